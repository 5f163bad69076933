"""The API's HTTP layer in-process: CPU per signed signup and per single event through the
whole ASGI application (middleware, routing, dependencies, validation, the route, the
answer), next to the service called without HTTP, on PostgreSQL: one request a call, and
in groups of ``--group-sizes`` requests as the app hands it the requests that waited together
(``orchestrator/api/coalescer.py``). uvicorn's parsing and socket work are not in it
(``api_load.py`` measures a real server). ``--kinds batch`` sends batches of 1,000 events
over 1,000 customers (``--batch-requests`` of them): it prints what reading one body costs
(``parse_event_body``: the JSON, the strict checks, the models) and the service alone
(``track_events`` on bodies read beforehand) next to the whole app. The garbage collector's
CPU is printed apart, by generation (``gc.callbacks``); ``gc.freeze()`` runs after the
warm-up and the young generation's threshold is the server's (``--gc-young``), as in
``stepmail api``.

    su postgres -c "createdb -O stepmail stepmail_bench_api_cpu"      # once
    .venv/bin/python bench/api_cpu.py
    .venv/bin/python bench/api_cpu.py --requests 2000 --profile signup
    .venv/bin/python bench/api_cpu.py --kinds event --group-sizes 1 4 16 64
    .venv/bin/python bench/api_cpu.py --kinds batch --batch-requests 64 --concurrency 32

Requests go straight to the application as ASGI messages, ``--concurrency`` at a time on
uvloop, as uvicorn would hand them over. CPU is this process's own (``time.process_time``,
every thread), so it is robust to a busy machine; the database's work is not in it.
The event loop's own CPU (``time.thread_time`` of this thread) is printed apart: it is the
HTTP layer, the services running in the thread pool. ``--profile`` runs cProfile (timed by
that thread's CPU) over the kind's requests: the thread pool is not in it. The database name must
contain ``bench`` (it is rebuilt).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import api_load
import uvloop
from api_load import API_KEY, CUSTOMERS, HOOK_SECRET
from bench_db import prepare_database, seed_customers
from pydantic import SecretStr

from orchestrator.api.app import create_app
from orchestrator.guards.strict_json import parse_json
from orchestrator.runtime import YOUNG_COLLECTION_EVERY, build_runtime
from orchestrator.services.event_groups import track_event_group
from orchestrator.services.events import track_events
from orchestrator.services.signup import enroll_signed_signup
from orchestrator.services.signup_groups import SignedSignup, enroll_signed_group
from orchestrator.settings import load_settings
from orchestrator.usage.events import parse_event_body

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://stepmail:stepmail@127.0.0.1:5432/stepmail_bench_api_cpu"
# The requests api_load.py sends through the server, as uvicorn hands their headers over.
Request = tuple[str, bytes, list[tuple[bytes, bytes]]]


def asgi_maker(make: Callable[[int, str], api_load.Request]) -> Callable[[int, str], Request]:
    def asgi(n: int, run: str) -> Request:
        path, body, headers = make(n, run)
        return path, body, [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    return asgi


MAKERS = {kind: asgi_maker(api_load.MAKERS[kind]) for kind in ("signup", "event", "batch")}
# A batch of 1,000 is never grouped (orchestrator/api/events.py runs it alone): its service
# call is timed apart from reading its body (parse_event_body) instead.
GROUPED = ("signup", "event")


async def call_app(app: Callable[..., Awaitable[None]], request: Request) -> int:
    """One request as uvicorn hands it over: the scope, one body message, the answer."""
    path, body, headers = request
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # a disconnect never comes while the request runs
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="per kind")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kinds", nargs="+", choices=tuple(MAKERS), default=list(GROUPED))
    parser.add_argument("--profile", nargs="*", choices=tuple(MAKERS), default=[])
    parser.add_argument("--top", type=int, default=50, help="profile lines")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--group-sizes",
        type=int,
        nargs="*",
        default=[1, 8, 32],
        help="the service's CPU per request when the API hands it groups of this many",
    )
    parser.add_argument(
        "--gc-young",
        type=int,
        default=YOUNG_COLLECTION_EVERY,
        help="the young generation's threshold (the API process's; Python's default is 700)",
    )
    parser.add_argument(
        "--batch-requests", type=int, default=40, help="batches of 1,000 (kind batch)"
    )
    args = parser.parse_args(argv)
    gc.callbacks.append(_GC_CLOCK)
    engine = prepare_database(args.database_url)
    seed_customers(engine, "ev-", CUSTOMERS, datetime.now(UTC) - timedelta(days=3))
    settings = load_settings(
        environment="development",
        database_url=args.database_url,
        journeys_dir=ROOT / "journeys",
        templates_dir=ROOT / "templates" / "mail",
        signup_hook_secret=SecretStr(HOOK_SECRET),
        api_key=SecretStr(API_KEY),
    )
    runtime = build_runtime(settings)
    app = create_app(runtime)
    run = f"{int(time.time())}-{os.getpid()}"
    print(f"load average {os.getloadavg()[0]:.1f}; {args.requests} requests per kind")
    try:
        for kind in args.kinds:
            make = MAKERS[kind]
            service = _service_call(runtime, kind)
            total = args.batch_requests if kind == "batch" else args.requests
            for n in range(3 if kind == "batch" else 30):  # warm: statements, routes, models
                service(make(-1 - n, run + "w"))
                uvloop.run(_drive(app, [make(-100 - n, run + "w")], 1))
            gc.collect()
            gc.freeze()  # as the server does once its runtime is built
            gc.set_threshold(args.gc_young, *gc.get_threshold()[1:])
            requests = [make(n, run) for n in range(total)]
            alone = [make(n, run + "s") for n in range(total)]
            parsed: dict[int, Any] = {}
            if kind == "batch":  # the service alone: bodies read beforehand
                _time_batch_reading(alone)
                parsed = {id(r): parse_event_body(r[1]) for r in alone}
                service = _batch_call(runtime, parsed)
            started, in_gc = time.process_time(), _GC_CLOCK.spent
            for request in alone:
                service(request)
            service_ms = 1000 * (time.process_time() - started) / len(alone)
            service_gc_ms = 1000 * (_GC_CLOCK.spent - in_gc) / len(alone)
            service = _service_call(runtime, kind)
            parsed = {}  # its 40,000 models would make every full collection below dearer
            grouped = _group_call(runtime, kind)
            for size in args.group_sizes if kind in GROUPED else ():
                batch = [make(n, f"{run}g{size}") for n in range(args.requests)]
                started = time.process_time()
                for first in range(0, len(batch), size):
                    grouped(batch[first : first + size])
                group_ms = 1000 * (time.process_time() - started) / len(batch)
                print(
                    f"{kind:<7} the service, groups of {size:>3}: {group_ms:.2f} ms CPU per request"
                )
            profiler = cProfile.Profile(time.thread_time) if kind in args.profile else None
            started, loop_started = time.process_time(), time.thread_time()
            in_gc = _GC_CLOCK.spent
            gens0, counts0 = list(_GC_CLOCK.by_generation), list(_GC_CLOCK.count)
            if profiler:
                profiler.enable()
            statuses = uvloop.run(_drive(app, requests, args.concurrency))
            if profiler:
                profiler.disable()
            app_ms = 1000 * (time.process_time() - started) / len(requests)
            loop_ms = 1000 * (time.thread_time() - loop_started) / len(requests)
            app_gc_ms = 1000 * (_GC_CLOCK.spent - in_gc) / len(requests)
            per_generation = ", ".join(
                f"{1000 * (spent - before) / len(requests):.2f} ms in {count - counted}"
                for spent, before, count, counted in zip(
                    _GC_CLOCK.by_generation, gens0, _GC_CLOCK.count, counts0, strict=True
                )
            )
            print(
                f"{kind:<7} through the app {app_ms:.2f} ms CPU per request, "
                f"{loop_ms:.2f} ms of it on the event loop's thread, {app_gc_ms:.2f} in the "
                f"garbage collector (statuses {statuses}); "
                f"the service one request a call {service_ms:.2f} ms (gc {service_gc_ms:.2f}; "
                f"the app groups the requests that wait, up to {args.concurrency} at a time)\n"
                f"        the collector by generation (0, 1, 2): {per_generation} collections"
            )
            if profiler:
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("cumulative").print_stats(args.top)
                stats.sort_stats("tottime").print_stats(args.top)
                print(out.getvalue())
    finally:
        runtime.close()
        engine.dispose()


class _GcClock:
    """CPU spent in the cyclic garbage collector (``gc.callbacks``), every thread's."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._started = 0.0
        self.by_generation = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            spent = time.process_time() - self._started
            self.spent += spent
            self.by_generation[info["generation"]] += spent
            self.count[info["generation"]] += 1


_GC_CLOCK = _GcClock()


def _time_batch_reading(requests: list[Request]) -> None:
    """CPU of turning a batch's body into its validated events, the JSON apart (the loop's
    share of a batch before its service call)."""
    started = time.process_time()
    for _path, body, _headers in requests:
        json.loads(body)
    json_ms = 1000 * (time.process_time() - started) / len(requests)
    started = time.process_time()
    for _path, body, _headers in requests:
        parse_json(body)
    strict_ms = 1000 * (time.process_time() - started) / len(requests)
    started = time.process_time()
    for _path, body, _headers in requests:
        parse_event_body(body)
    parse_ms = 1000 * (time.process_time() - started) / len(requests)
    print(
        f"batch   reading a body of {len(requests[0][1]):,} bytes: parse_event_body "
        f"{parse_ms:.2f} ms CPU (json.loads {json_ms:.2f}, with the strict checks "
        f"{strict_ms:.2f}, the models the rest)"
    )


def _service_call(runtime: Any, kind: str) -> Callable[[Request], object]:
    """The route's service call on a request's body, without HTTP."""
    if kind == "signup":

        def signup(request: Request) -> object:
            _path, body, headers = request
            given = dict(headers)
            return enroll_signed_signup(
                runtime.engine,
                body,
                given[b"x-stepmail-timestamp"].decode(),
                given[b"x-stepmail-signature"].decode(),
                hook=runtime.hook_rules(),
                journeys=runtime.journeys,
                rules=runtime.enrollment_rules(),
                clock=runtime.clock,
            )

        return signup

    def event(request: Request) -> object:
        return track_events(
            runtime.engine,
            parse_event_body(request[1]),
            rules=runtime.usage_rules(),
            clock=runtime.clock,
            notify=lambda _ids: None,
        )

    return event


def _batch_call(runtime: Any, parsed: dict[int, Any]) -> Callable[[Request], object]:
    """``track_events`` on a batch whose body was read beforehand (``parsed`` by request)."""

    def batch(request: Request) -> object:
        return track_events(
            runtime.engine,
            parsed[id(request)],
            rules=runtime.usage_rules(),
            clock=runtime.clock,
            notify=lambda _ids: None,
        )

    return batch


def _group_call(runtime: Any, kind: str) -> Callable[[list[Request]], list[object]]:
    """The service call the API makes for a group of requests that waited together."""

    def signups(requests: list[Request]) -> list[object]:
        signed = []
        for _path, body, headers in requests:
            given = dict(headers)
            timestamp = given[b"x-stepmail-timestamp"].decode()
            signed.append(SignedSignup(body, timestamp, given[b"x-stepmail-signature"].decode()))
        return list(
            enroll_signed_group(
                runtime.engine,
                signed,
                hook=runtime.hook_rules(),
                journeys=runtime.journeys,
                rules=runtime.enrollment_rules(),
                clock=runtime.clock,
            )
        )

    def events(requests: list[Request]) -> list[object]:
        submissions = [parse_event_body(body) for _path, body, _headers in requests]
        return list(
            track_event_group(
                runtime.engine, submissions, rules=runtime.usage_rules(), clock=runtime.clock
            )
        )

    return signups if kind == "signup" else events


async def _drive(app: Any, requests: list[Request], concurrency: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    queue = iter(requests)

    async def client() -> None:
        for request in queue:
            status = await call_app(app, request)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return statuses


if __name__ == "__main__":
    main()
