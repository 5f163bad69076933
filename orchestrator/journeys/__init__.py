"""Journeys as code: the typed model, the YAML loader, conditions and the schedule compiler."""
