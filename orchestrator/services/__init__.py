"""Use cases: each function here owns its transaction."""
