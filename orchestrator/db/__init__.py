"""The store: SQLModel tables (and their Core form), the engine factory, UTC datetimes on both
databases, upserts, the customer locks and migrations. Only capability packages, services, the
runtime and the start-up checks import it."""
