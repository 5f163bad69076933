"""What a serving process makes sure of before it starts.

``stepmail run``, ``api``, ``scheduler``, ``worker`` and ``dramatiq workers`` call
:func:`~orchestrator.startup.gate.check_before_serving`: in production they refuse development
defaults (``development_defaults``), then check that what the settings point at is there and
usable (``preflight``), so a mistake stops start-up with one line naming the variable instead
of a traceback, or a service that enrolls in nothing. Authors' tools (``check``, ``preview``,
``simulate``, ``schema``) skip both and work without secrets. ``unknown_variables`` catches
mistyped ``STEPMAIL_*`` names, which pydantic-settings would silently ignore.
"""
