"""What an operator sees of a running process: its log lines (one format for ours, uvicorn's
and Dramatiq's, capability tokens redacted), its Prometheus metrics and the small HTTP server
that exposes them with a liveness probe. Nothing here reads the store: scrape-time readings
are callables the entry points hand in."""
