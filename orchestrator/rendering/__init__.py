"""Mail rendering: a sandboxed, autoescaping Jinja environment, tier/locale lookup, CSS, text."""
