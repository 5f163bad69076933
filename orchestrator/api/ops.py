"""What orchestration and monitoring ask of the API process: ``/healthz`` (the process
answers; no database, so a database outage never restarts healthy API processes),
``/readyz`` (the database and, when configured, Redis answer within a short timeout; 503
naming the failing part otherwise, so a load balancer stops routing here) and ``/metrics``
(Prometheus; with ``STEPMAIL_METRICS_TOKEN`` set, only for that bearer token)."""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.api.deps import RuntimeDep
from orchestrator.api.openapi import answers
from orchestrator.api.routing import StrictRoute
from orchestrator.errors import WrongApiKey
from orchestrator.observability.exposition import CONTENT_TYPE, render
from orchestrator.services.admin import ping_database
from orchestrator.services.status import redis_state

router = APIRouter(tags=["ops"], route_class=StrictRoute)

READY_TIMEOUT = 2.0  # seconds each dependency has to answer


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process serves requests. Reads nothing."""
    return {"status": "ok"}


@router.get("/readyz", responses=answers(503, s503="Not ready: `detail` names what fails"))
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: the database (and Redis, when configured) answer within two seconds."""
    checks = {"database": await _check_database(runtime), "redis": await _check_redis(runtime)}
    failing = {
        part: state for part, state in checks.items() if state not in ("ok", "not configured")
    }
    if not failing:
        return JSONResponse({"status": "ok", "checks": checks})
    detail = "not ready: " + "; ".join(f"{part} {checks[part]}" for part in failing)
    return JSONResponse({"detail": detail, "checks": checks}, status_code=503)


async def _check_database(runtime: RuntimeDep) -> str:
    try:
        await asyncio.wait_for(run_in_threadpool(ping_database, runtime.engine), READY_TIMEOUT)
    except TimeoutError:
        return "unreachable: no answer within 2s"
    except Exception as exc:  # any driver error means "not ready", named, never a 500
        return "unreachable: " + _first_line(exc)
    return "ok"


async def _check_redis(runtime: RuntimeDep) -> str:
    url = runtime.settings.redis_url
    try:
        return await asyncio.wait_for(
            run_in_threadpool(redis_state, url, READY_TIMEOUT), READY_TIMEOUT + 0.5
        )
    except TimeoutError:
        return "unreachable: no answer within 2s"


@router.get("/metrics", response_class=Response, include_in_schema=False)
def metrics(runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    token = runtime.settings.metrics_token
    if token is not None:
        scheme, _, given = (authorization or "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise WrongApiKey()
    body = render(runtime.metrics_registry(), runtime.scrape_time_gauges())
    return Response(body, media_type=CONTENT_TYPE)


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0].strip()[:200] if lines else type(cause).__name__
