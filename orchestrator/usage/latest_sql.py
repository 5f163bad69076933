"""The latest event of a name for one customer, on PostgreSQL: its properties, read from the
end of the customer's range of the ``usage_event (customer_id, name, occurred_at)`` index back
to the last moment at or before ``now`` (``FETCH FIRST 1 ROW WITH TIES``: every event of that
moment), and of those the later stored.

Asked by the health score's "latest" components for many customers at once
(``health/inputs``) and by ``usage.property`` in conditions (``usage/facts``).

Ordered by the moment and the id in one step, the query read and sorted every event of the
name the customer ever sent wherever the planner chose a full sort (the index holds no id):
10 customers with 2,000 NPS answers each cost ~1.5 ms apiece (bench/latest_probe.py,
bench/README "Session 36"). Here the name and the moment are bounded by row comparisons and
ordered on with the customer fixed, an order only this index gives, so the plan reads it from
the end without a sort. Ordered by the moment alone, a young table's statistics sent the
planner down the ``occurred_at`` index through every customer's events; by the customer and
the moment, down ``(customer_id, event_key)`` through all of the customer's events; by the id,
down the primary key.
"""

from __future__ import annotations


def latest_properties_sql(customer: str, name: str, now: str) -> str:
    """The statement as a parenthesized ``SELECT``, of SQL expressions for the customer's id,
    the event's name and the moment "now" (the callers' own fixed fragments and bound
    parameters, never a value)."""
    return f"""(SELECT t.properties FROM (SELECT m.properties, m.id FROM usage_event AS m
            WHERE m.customer_id = {customer}
            AND (m.customer_id, m.name, m.occurred_at) > ({customer}, {name}, '-infinity')
            AND (m.customer_id, m.name, m.occurred_at) <= ({customer}, {name}, {now})
            ORDER BY m.name DESC, m.occurred_at DESC FETCH FIRST 1 ROW WITH TIES) AS t
        ORDER BY t.id DESC LIMIT 1)"""  # noqa: S608 (fragments of the callers' own text)
