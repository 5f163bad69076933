"""The HTTP API, routes only: each reads its request, calls one service and answers. What
runs before a route (the bearer gate, body limits, strict JSON) and the one exception handler
live here too."""
