"""How Stepmail steers PostgreSQL's planner for its per-customer probes (and an event batch's
open enrollments, which ``usage/reactions.py`` marks the same way: a generic plan checked each
open enrollment against the batch's ids one by one), why its own reads commit, and which
statements read their rows in binary.

The usage questions of an event batch (usage/prefetch, health/inputs) are asked as one
statement of hundreds to thousands of small index probes, one per customer and question. Three
of PostgreSQL's defaults suit that shape badly:

- **Prepared plans.** psycopg prepares a statement on the server from its fifth run, and the
  server may then keep one generic plan for it until the table's statistics change. Chosen
  while ``usage_event`` held a page, a sequential scan inside each probe stays however large
  the table grows, until autovacuum next analyzes it (up to a minute; in the API bench,
  groups of single events slowed from 9 to 30 ms; a generic plan made at 60 rows took 116 ms
  for 62 probes once the table held 30,000, against 0.34 ms planned afresh).
  :data:`PLAN_EACH_TIME` runs a statement unprepared, planned for its own parameters each
  time: ~0.15 ms a plan, about 6% of single events' throughput (bench/README, "Session 9").
- **JIT compilation.** A batch's probes add up to an estimated cost past ``jit_above_cost``,
  so the server compiled the statement (~6 ms a batch of 1,000 customers) to run index
  probes that compiling does not speed up. :func:`plan_for_many_probes` turns it off for the
  rest of the transaction, all of whose statements are short.
- **The price of a random page.** ``random_page_cost`` defaults to 4, a spinning disk's
  price. The statements after the probes touch a few rows a customer by key, customers
  this transaction has just read under their lock: at that price the planner stored a
  batch's ~640 moved scores by hashing every customer of the table (a sequential scan) in
  a table of 10,000, where looking each one up by its key cost a third less (health/
  rescore's statement: 12.5 → 8.9 ms, ``EXPLAIN ANALYZE``, bench/README "Session 35"); only
  a table about twice as large tipped it to the keys. The same call prices a random page as
  a cached one (1.1, the usual setting for SSDs) for the rest of the transaction, never
  above the server's own setting.

Prepared statements outlive only commits: psycopg deallocates every statement a connection
prepared when that connection rolls back. The reads a long-running process makes by itself on
its pool (the journey catalog's, once a second; a worker's choice of archive dictionary)
therefore commit, so the hot statements stay prepared and reach generic plans. Every
statement with an array parameter has been checked for a generic plan that tests rows against
the array one by one (``bench/generic_plans.py``: only the open enrollments' did, on a young
database, and it is planned each time); check a new one the same way.

**Rows in binary.** An event batch reads thousands of rows (its customers under their lock,
the health answers, the open enrollments, the keys of the events stored): in PostgreSQL's
text format every integer is parsed from its digits and every timestamp from its text on
both ends. :data:`BINARY_RESULTS` has psycopg ask for them in binary instead, the same
Python values (2% of a batch's instructions in the API, bench/README "Session 35").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

# Execution options (``text(...).execution_options(**PLAN_EACH_TIME)``), read by
# :func:`execute_as_marked`, which make_engine installs on PostgreSQL engines.
PLAN_EACH_TIME = {"plan_each_time": True}
BINARY_RESULTS = {"binary_results": True}

# From this many probes in one statement, the transaction is planned as a batch's: no JIT,
# random pages priced as cached ones. The default jit_above_cost (100,000) is reached near
# 12,000 (each ~8.6); a tenth of that keeps a server whose threshold was lowered from
# compiling a batch as well.
PROBES_WITHOUT_JIT = 1_000
RANDOM_PAGE_COST = 1.1  # what comes after touches rows this transaction just read

# One round trip for both settings, each for the rest of the transaction (is_local).
_PLAN_FOR_PROBES = text(
    "SELECT set_config('jit', 'off', true), set_config('random_page_cost',"
    " CAST(LEAST(CAST(current_setting('random_page_cost') AS float8), :cost) AS text), true)"
)


def execute_as_marked(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    """SQLAlchemy's ``do_execute`` hook: a statement marked ``PLAN_EACH_TIME`` runs unprepared,
    one marked ``BINARY_RESULTS`` has its rows sent in binary (True: SQLAlchemy's own run is
    skipped); any other goes SQLAlchemy's way."""
    if context is None:
        return False
    options = context.execution_options
    unprepared, binary = options.get("plan_each_time"), options.get("binary_results", False)
    if not (unprepared or binary):
        return False
    if unprepared:
        cursor.execute(statement, parameters, prepare=False, binary=binary)
    else:
        cursor.execute(statement, parameters, binary=True)
    return True


def plan_for_many_probes(connection: Connection, probes: int) -> None:
    """Before a statement of ``probes`` probes: past :data:`PROBES_WITHOUT_JIT`, no JIT and
    random pages at :data:`RANDOM_PAGE_COST` (or the server's own, if lower) for the rest of
    this transaction (PostgreSQL only; both end with the transaction)."""
    if probes < PROBES_WITHOUT_JIT or connection.dialect.name != "postgresql":
        return
    transaction = connection.get_transaction()
    if transaction is None or connection.info.get("planned_for_probes_in") is not transaction:
        # once a transaction: a batch asks twice (usage, health)
        connection.execute(_PLAN_FOR_PROBES, {"cost": RANDOM_PAGE_COST})
        connection.info["planned_for_probes_in"] = connection.get_transaction()
