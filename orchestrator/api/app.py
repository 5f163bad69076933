"""The FastAPI application, built around a runtime (no globals, nothing at import time)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from orchestrator.api import (
    analytics,
    clicks,
    events,
    ops,
    programs,
    sendgrid_webhook,
    signup,
    suppressions,
    surveys,
    tasks,
    unsubscribe,
    webhooks,
)
from orchestrator.api import customers as customer_routes
from orchestrator.api.api_docs import router as docs_router
from orchestrator.api.bearer_gate import BearerGate
from orchestrator.api.body_budget import BodyBudget
from orchestrator.api.body_limit import BodyLimit, route_limits
from orchestrator.api.errors import install_error_handler
from orchestrator.api.observe import ObserveRequests
from orchestrator.api.recipient_pages import RecipientPages
from orchestrator.api.routing import StrictRoute
from orchestrator.runtime import Runtime
from orchestrator.version import stepmail_version


def create_app(runtime: Runtime, *, processes: int = 1) -> FastAPI:
    """The API as one of ``processes`` serving the same port (they share out the slots for
    large event bodies, ``events.BATCHES_AT_ONCE``)."""
    app = FastAPI(
        title="Stepmail",
        version=stepmail_version(),
        description="Step-mail onboarding journeys by touch tier. Hooks are HMAC-signed.",
        docs_url=None,  # served by api_docs from the package's own files, not a CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.event_groups = events.event_groups(runtime)
    app.state.batch_slots = events.batch_slots(processes, runtime.settings.api_batch_slots)
    app.state.signup_groups = signup.signup_groups(runtime)
    install_error_handler(app)
    app.router.route_class = StrictRoute  # /healthz, like every router's routes
    settings = runtime.settings
    # Added last = runs first: the request id and access log (outermost, so every answer
    # below it is logged and counted, a 503 of the body budget or a 401 of the gate too),
    # private headers on recipient pages, the shared body budget and deadline (it sees every
    # answer, to close a connection whose body was not read), the bearer gate, the body cap,
    # routing.
    app.add_middleware(BodyLimit, default=settings.max_body_bytes, limits=route_limits(settings))
    app.add_middleware(BearerGate, settings=settings)
    app.add_middleware(
        BodyBudget, budget=settings.preauth_body_budget, body_timeout=settings.http_body_timeout
    )
    app.add_middleware(RecipientPages)  # /unsubscribe/, /nps/, /programs/ answers private
    app.add_middleware(ObserveRequests)  # outermost
    # The router tries its routers in this order (each its routes, twice), so the two routes
    # every product calls on every signup and event come first; no path of one overlaps another.
    app.include_router(signup.router, tags=["hooks"])
    app.include_router(events.router, tags=["usage"])
    app.include_router(unsubscribe.router, tags=["recipients"])
    app.include_router(surveys.router, tags=["recipients"])
    app.include_router(programs.router, tags=["recipients"])
    app.include_router(sendgrid_webhook.router, tags=["hooks"])
    app.include_router(suppressions.router, tags=["suppressions"])
    app.include_router(customer_routes.router, tags=["usage"])
    app.include_router(tasks.router, tags=["csm tasks"])
    app.include_router(webhooks.router, tags=["webhooks"])
    app.include_router(ops.router)
    app.include_router(analytics.router, tags=["analytics"])
    app.include_router(clicks.router, tags=["recipients"])
    app.include_router(docs_router)

    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    # The operator console: its own pages, error pages and headers (orchestrator/console/),
    # imported here so schedulers and workers, which never serve it, never load it.
    from orchestrator.console.app import create_console_app

    app.mount("/console", create_console_app(runtime), name="console")
    return app
