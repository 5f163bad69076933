"""Every answer under ``/unsubscribe/``, ``/nps/`` and ``/programs/`` is private to one
recipient and must stay so. The pages set their own headers (``api/unsubscribe.py``,
``api/surveys.py``, ``api/programs.py``); the answers that do not come from
a page -- a 413 from the body limit, a 422 or 405 from routing -- carry the same
``no-store``, ``no-referrer`` and ``nosniff``, so no cache keeps a recipient's token. A path
ending in ``/`` is not found: the router's slash redirect would build an absolute
``http://`` URL from the request's ``Host`` header (an attacker's host, or a downgrade
behind a TLS proxy).
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIXES = ("/unsubscribe/", "/nps/", "/programs/")  # each path carries a signed token
PRIVATE = {
    b"cache-control": b"no-store",
    b"referrer-policy": b"no-referrer",
    b"x-content-type-options": b"nosniff",
}


class RecipientPages:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIXES):
            await self.app(scope, receive, send)
            return
        if scope["path"].endswith("/"):
            await JSONResponse({"detail": "Not Found"}, 404, headers=_private())(
                scope, receive, send
            )
            return

        async def private(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k, v) for k, v in PRIVATE.items() if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, private)


def _private() -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in PRIVATE.items()}
