"""Mail rendering: a sandboxed, autoescaping Jinja environment, tier/locale lookup, the
stylesheet inlined at compile time, the text part, what templates see, and composing the
rendered template into the mail a transport sends."""
