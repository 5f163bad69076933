"""The HTTP API: signup hook, unsubscribe, health."""
