"""The audit log: who did what to which thing, when. Every operator action writes one row in
the same transaction as the action, so an action and its record stand or fall together."""
