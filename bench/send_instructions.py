"""The send path's cost a mail in CPU instructions, which the host's drift does not move.

Timings on this machine drift by 20–40% within minutes, so a change of a few percent needs
many interleaved pairs to show. An instruction count does not drift: this runs
``send_stages.py`` (one thread, in process, real PostgreSQL and the SendGrid stand-in) under
Valgrind's cachegrind twice, for a short and a long run, and divides the difference of the
two counts by the difference of their mails. What both runs do once (start-up, the templates'
compile, seeding) cancels out; what is left is the worker's instructions a mail. Repeated,
the figure agrees within about half a percent.

    .venv/bin/python bench/send_instructions.py                      # this tree
    .venv/bin/python bench/send_instructions.py --tree /tmp/old       # another checkout
    .venv/bin/python bench/send_instructions.py --mails 200 1200 --step activation_nudge
    .venv/bin/python bench/send_instructions.py --frequency-cap '1/day,3/week'
    .venv/bin/python bench/send_instructions.py --render-only [--tree /tmp/old]

``--render-only`` counts ``render_cpu.py`` instead: a mail's render alone (draft, signed
links, text part), no database, no transport ("Session 27").

Instructions are not time: a change that trades instructions for cache misses, or moves work
to the database server (not counted: only this process is traced), can read better here than
it runs. It ranks changes to the worker's Python code; the end-to-end bench says what they
are worth. Needs ``valgrind`` (Debian's package) and the bench database (see bench/README.md).
Each run takes about a minute (the traced process runs ~15 times slower).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench"
_I_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(tree: Path, mails: int, bench: Sequence[str], count: str = "--mails") -> int:
    """The instructions ``bench`` (a script of ``tree`` and its arguments) executes for
    ``mails`` mails (or what its option ``count`` counts), start to end."""
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        str(tree / "bench" / bench[0]),
        count,
        str(mails),
        *bench[1:],
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    found = _I_REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{bench[0]} {count} {mails} failed under valgrind (above)")
    return int(found.group(1).replace(",", ""))


def print_difference(
    tree: Path, bench: Sequence[str], sizes: tuple[int, int], count: str, units: str, each: str
) -> None:
    """Count ``bench`` for a short and a long run (``count`` giving their sizes) and print the
    instructions of one more unit: what both runs do once cancels out."""
    short, long = sizes
    counts = [instructions(tree, n, bench, count) for n in sizes]
    print(f"tree {tree}")
    print(f"instructions: {counts[0]:,} for {short} {units}, {counts[1]:,} for {long}")
    print(f"instructions {each}: {(counts[1] - counts[0]) / (long - short):,.0f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument(
        "--mails", type=int, nargs=2, default=(200, 1200), metavar=("SHORT", "LONG")
    )
    parser.add_argument("--step", help="send_stages.py --step (default: its welcome step)")
    parser.add_argument("--frequency-cap", help="send_stages.py --frequency-cap (default: none)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--render-only", action="store_true", help="count render_cpu.py (no database)"
    )
    args = parser.parse_args(argv)
    short, long = args.mails
    if not 0 < short < long:
        parser.error("--mails SHORT LONG needs 0 < SHORT < LONG")
    tree = args.tree.resolve()
    step = ["--step", args.step] if args.step else []
    if args.render_only:
        if args.frequency_cap:
            parser.error("--frequency-cap is the send path's; --render-only has none")
        bench = ["render_cpu.py", "--one", str(tree), *step]
    else:
        bench = ["send_stages.py", "--database-url", args.database_url, *step]
        bench += ["--frequency-cap", args.frequency_cap] if args.frequency_cap else []
    print_difference(tree, bench, (short, long), "--mails", "mails", "a mail")


if __name__ == "__main__":
    main()
