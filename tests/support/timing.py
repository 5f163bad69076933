"""Counting what happened in time: how many events any one sliding second held."""

from __future__ import annotations


def max_per_sliding_second(times: list[float]) -> int:
    """The most events inside any one-second window (windows start at each event)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best
