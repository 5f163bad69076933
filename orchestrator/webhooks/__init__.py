"""Outgoing webhooks: integrators subscribe URLs to what happens in Stepmail.

``events`` names what can be subscribed to; ``outbox`` writes one message per subscribed
endpoint inside the transaction of the fact it reports (so a rolled-back fact sends nothing
and a committed one is never lost); ``destinations`` refuses URLs that point inside the
network; ``signing`` signs per the Standard Webhooks scheme; ``delivery`` claims the head of
each endpoint's queue, posts it and records the attempt. The loop that runs it lives in the
scheduler process (:mod:`orchestrator.processes.webhook_loop`), never on the send path.
"""
