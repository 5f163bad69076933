"""A batch of events' cost to the API process in CPU instructions, which the host's drift
does not move: ``event_cpu.py`` (in process, no HTTP, real PostgreSQL, the shipped journeys,
health and lifecycle files, the heap settled as a serving process's) under Valgrind's
cachegrind for a short and a long run, the difference of the counts over the difference of
their batches of 1,000 events (as ``send_instructions.py`` does for mails).

    .venv/bin/python bench/event_instructions.py                     # this tree
    .venv/bin/python bench/event_instructions.py --tree /tmp/old      # another checkout

Only the API process is traced: PostgreSQL's share of a batch (about as much CPU again) is
``event_statements.py``'s. Each run takes about a minute. The database name must contain
``bench`` (it is rebuilt).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from event_cpu import BATCH, DEFAULT_DATABASE_URL
from send_instructions import ROOT, print_difference


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--batches", type=int, nargs=2, default=(3, 13), metavar=("SHORT", "LONG"))
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    short, long = args.batches
    if not 0 < short < long:
        parser.error("--batches SHORT LONG needs 0 < SHORT < LONG")
    tree = args.tree.resolve()
    bench = ["event_cpu.py", "--database-url", args.database_url, "--singles", "1", "--gc-freeze"]
    each = f"a batch of {BATCH:,} events"
    print_difference(tree, bench, (short, long), "--batches", "batches", each)


if __name__ == "__main__":
    main()
