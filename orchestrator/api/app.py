"""The FastAPI application, built around a runtime (no globals, nothing at import time)."""

from __future__ import annotations

from fastapi import FastAPI

from orchestrator.api import customers as customer_routes
from orchestrator.api import (
    events,
    ops,
    sendgrid_webhook,
    signup,
    suppressions,
    tasks,
    unsubscribe,
    webhooks,
)
from orchestrator.api.bearer_gate import BearerGate
from orchestrator.api.body_limit import BodyLimit, route_limits
from orchestrator.api.errors import install_error_handler
from orchestrator.api.observe import ObserveRequests
from orchestrator.api.routing import StrictRoute
from orchestrator.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Stepmail",
        version="0.1.0",
        description="Step-mail onboarding journeys by touch tier. Hooks are HMAC-signed.",
    )
    app.state.runtime = runtime
    install_error_handler(app)
    app.router.route_class = StrictRoute  # /healthz, like every router's routes
    settings = runtime.settings
    # Added last = runs first: the request id and access log, the bearer gate, the body cap,
    # then routing.
    app.add_middleware(BodyLimit, default=settings.max_body_bytes, limits=route_limits(settings))
    app.add_middleware(BearerGate, settings=settings)
    app.add_middleware(ObserveRequests)
    app.include_router(signup.router, tags=["hooks"])
    app.include_router(unsubscribe.router, tags=["recipients"])
    app.include_router(sendgrid_webhook.router, tags=["hooks"])
    app.include_router(suppressions.router, tags=["suppressions"])
    app.include_router(events.router, tags=["usage"])
    app.include_router(customer_routes.router, tags=["usage"])
    app.include_router(tasks.router, tags=["csm tasks"])
    app.include_router(webhooks.router, tags=["webhooks"])
    app.include_router(ops.router)
    return app
