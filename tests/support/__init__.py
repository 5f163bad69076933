"""Helpers the tests share: the test installation, signed signups, inline delivery, fakes
that behave as scripted. Fixtures stay in ``tests/conftest.py``."""
