"""The long-running processes: the all-in-one service, the API server, the scheduler loop and
the send actor a worker runs. They assemble the runtime and call services."""
