"""The send path's steps inside its transactions: claiming rows, reading what ``decide`` needs,
pacing (send windows, the frequency cap), the hand-over record, writing outcomes with jittered
retries, reconciliation of unknown outcomes and settling them by hand. The order they run in
is :mod:`orchestrator.services.delivery`."""
