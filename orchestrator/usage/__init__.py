"""Product usage: events in (read, checked, stored once), what conditions can ask about them,
and how journeys react to them."""
