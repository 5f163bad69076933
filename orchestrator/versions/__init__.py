"""Journey versions in the store: the snapshot of each distinct journey content (``store``),
what is in flight in a journey (``in_flight``), and applying a change to the rows of the
customers in it (``apply``). The plan itself is pure (:mod:`orchestrator.journeys.changes`);
the transactions are the versions service's (:mod:`orchestrator.services.journey_versions`)."""
