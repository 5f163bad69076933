"""The pure core of the journey language: the typed model, the YAML loader, conditions,
durations and the schedule compiler, the send states, and every send-time decision on them
(``decide``, send windows, the frequency cap, deferrals). No I/O. (The YAML files themselves are
the repository's ``journeys/`` folder.)"""
