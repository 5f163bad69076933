"""``/v1`` checks the bearer token before anything else happens to a request.

FastAPI reads and parses a route's body before it runs the route's dependencies, so an
unauthenticated caller could make the process read a body, and learn from a 422 what the API
expects. This pure ASGI middleware answers 401 first, from the headers alone; the route
dependency (``deps.require_api_key``) stays, for the OpenAPI security scheme and in depth.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.api.deps import bearer_refusal, bearer_token
from orchestrator.api.errors import error_response
from orchestrator.settings import Settings

PROTECTED_PREFIX = "/v1"


class BearerGate:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _protected(scope["path"]):
            refusal = bearer_refusal(self.settings.api_key, bearer_token(scope["headers"]))
            if refusal is not None:
                await error_response(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")
