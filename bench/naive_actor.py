"""The design a newcomer picks first, for ``naive_delay.py``: one Dramatiq message per journey
step, held back with ``send_with_options(delay=…)`` until it is due.

The actor does nothing but count: it reads no database, renders nothing and posts nothing,
so whatever this design fails to send in time is the design's doing, not the work's. Run by
``dramatiq naive_actor`` from ``bench/`` with ``NAIVE_REDIS_URL`` set.
"""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

QUEUE = "naive_bench"
SENT_KEY = "naive_bench:sent_due"  # due steps run
EARLY_KEY = "naive_bench:sent_future"  # far-future steps run (must stay 0)

REDIS_URL = os.environ.get("NAIVE_REDIS_URL", "redis://127.0.0.1:6379/14")
broker = RedisBroker(url=REDIS_URL)  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)
_counter = redis.Redis.from_url(REDIS_URL)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def send_step(customer: int, step: str, due: bool) -> None:
    """ "Send" one step: count it, by whether it was one of the steps due within seconds."""
    _counter.incr(SENT_KEY if due else EARLY_KEY)
