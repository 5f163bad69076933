"""Who may use the operator console and what each may do: console users and their roles,
argon2id passwords, server-side sessions and the login throttle.

The modules here run inside a caller's transaction (they take a ``Connection``) and never open
one; :mod:`orchestrator.services.accounts` owns the transactions.
"""
