"""Storage: SQLModel tables, the engine factory and migrations."""
