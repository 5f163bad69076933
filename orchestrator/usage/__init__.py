"""Product usage: events in, what conditions can ask about them, and how journeys react."""
