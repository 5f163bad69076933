"""Use cases: each function owns its transaction and takes exactly what it needs."""
