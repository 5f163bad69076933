"""``stepmail preview serve``: every tier × language of a step, side by side, updated as the
author saves.

A page lists the journeys and their steps; a step's page shows each tier × locale render in a
sandboxed frame (no script runs in a mail, and it gets an opaque origin), with its subject.
The page's one script (``preview_assets/live.js``, served from here: no inline script, no CDN)
listens on ``/events`` (Server-Sent Events) and, when the content changes, fetches the page
again and swaps its content in, frames included.

A change is noticed by :class:`ContentVersion`, the same freshness rule as the renderer's: the
folders are looked at no more than once per ``recheck_after`` of the clock's ``monotonic()``,
so tests move a FrozenClock instead of sleeping. Each new version gets freshly loaded journeys
and a new renderer, so what a page shows after a change is never a cached compile.

Samples only, no database, no secrets. Bound to 127.0.0.1 by default, and only requests naming
this server's own host are answered (a page elsewhere cannot read it through DNS rebinding).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import InvalidInput, JourneyError, StepmailError, TemplateError
from orchestrator.journeys.loader import load_all
from orchestrator.journeys.model import Journey
from orchestrator.rendering.renderer import MailRenderer, RenderedMail
from orchestrator.settings import Settings
from orchestrator.tools.preview import find_step, render_sample
from orchestrator.tools.template_branches import template_locales

STATIC = Path(__file__).with_name("preview_assets") / "static"
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; frame-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# A mail is shown as a client would: its own inline styles and remote images, nothing else.
MAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "frame-ancestors 'self'; sandbox"
)
_NO_STORE = {"Cache-Control": "no-store"}


class ContentVersion:
    """A fingerprint of the files under some folders, taken again only once ``recheck_after``
    seconds of ``clock.monotonic()`` have passed since the last look."""

    def __init__(self, folders: Iterable[Path], clock: Clock, recheck_after: float = 0.25) -> None:
        self.folders = list(folders)
        self.clock = clock
        self.recheck_after = recheck_after
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._version = ""

    def current(self) -> str:
        with self._lock:
            now = self.clock.monotonic()
            if self._checked_at is None or now - self._checked_at >= self.recheck_after:
                self._checked_at = now
                self._version = self._fingerprint()
            return self._version

    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        for folder in self.folders:
            for path in sorted(folder.rglob("*")):
                try:
                    stat = path.stat()
                except OSError:
                    continue  # removed while we looked: the next look sees it gone
                digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class _Content:
    version: str
    journeys: dict[str, Journey]
    errors: list[str]
    renderer: MailRenderer
    locales: list[str]


class PreviewState:
    """The journeys and a renderer for the content's current version."""

    def __init__(self, settings: Settings, clock: Clock, recheck_after: float = 0.25) -> None:
        self.settings = settings
        self.clock = clock
        self.versions = ContentVersion(
            [settings.journeys_dir, settings.templates_dir], clock, recheck_after
        )
        self._lock = threading.Lock()
        self._content: _Content | None = None

    def content(self) -> _Content:
        version = self.versions.current()
        with self._lock:
            if self._content is None or self._content.version != version:
                self._content = self._load(version)
            return self._content

    def _load(self, version: str) -> _Content:
        settings = self.settings
        report = load_all(settings.journeys_dir)
        renderer = MailRenderer(
            settings.templates_dir, settings.default_locale, recheck_after=3600, clock=self.clock
        )
        locales = template_locales(settings.templates_dir, settings.default_locale)
        return _Content(
            version, report.journeys, [str(e) for e in report.errors], renderer, locales
        )

    def render(self, journey_id: str, step_id: str, tier: str, locale: str) -> RenderedMail:
        content = self.content()
        journey, step = find_step(content.journeys, journey_id, step_id)
        return render_sample(
            self.settings, content.renderer, journey, step, tier, locale, self.now()
        )

    def now(self) -> datetime:
        return self.clock.now()


@dataclass(frozen=True)
class _Frame:
    tier: str
    locale: str
    subject: str | None
    error: str | None


def create_preview_app(
    state: PreviewState,
    *,
    allowed_hosts: Iterable[str] = ("127.0.0.1", "localhost", "[::1]", "::1"),
    poll_interval: float = 0.2,
    stream_for: float = 300.0,
) -> Starlette:
    """The preview server's app. ``poll_interval`` is how often a live stream asks for the
    version; a stream ends after ``stream_for`` seconds (the browser reconnects at once)."""
    pages = Environment(
        loader=PackageLoader("orchestrator.tools", "preview_assets/pages"),
        autoescape=select_autoescape(("html",)),
    )

    def page(name: str, status: int = 200, **values: object) -> HTMLResponse:
        html = pages.get_template(name).render(version=state.versions.current(), **values)
        return HTMLResponse(
            html, status, headers={"Content-Security-Policy": PAGE_POLICY, **_NO_STORE}
        )

    def index(request: Request) -> Response:
        content = state.content()
        return page("index.html", journeys=content.journeys.values(), errors=content.errors)

    def step_page(request: Request) -> Response:
        content = state.content()
        journey_id, step_id = request.path_params["journey"], request.path_params["step"]
        try:
            journey, step = find_step(content.journeys, journey_id, step_id)
        except StepmailError as exc:
            return page("missing.html", 404, message=str(exc), errors=content.errors)
        frames = [
            _frame(state, journey_id, step_id, tier, locale)
            for tier in step.tiers
            for locale in content.locales
        ]
        return page("step.html", journey=journey, step=step, frames=frames, errors=content.errors)

    def mail(request: Request) -> Response:
        params = request.path_params
        try:
            rendered = state.render(
                params["journey"], params["step"], params["tier"], params["locale"]
            )
        except (StepmailError, ValueError) as exc:
            return PlainTextResponse(str(exc), 404, headers=_NO_STORE)
        return HTMLResponse(
            rendered.html,
            headers={
                "Content-Security-Policy": MAIL_POLICY,
                "X-Content-Type-Options": "nosniff",
                **_NO_STORE,
            },
        )

    def version(request: Request) -> Response:
        return JSONResponse({"version": state.versions.current()}, headers=_NO_STORE)

    async def events(request: Request) -> Response:
        return StreamingResponse(
            _version_stream(request, state, poll_interval, stream_for),
            media_type="text/event-stream",
            headers=_NO_STORE,
        )

    def no_icon(request: Request) -> Response:
        return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})

    hosts = list(allowed_hosts)
    return Starlette(
        routes=[
            Route("/", index),
            Route("/journeys/{journey}/{step}", step_page),
            Route("/mail/{journey}/{step}/{tier}/{locale}", mail),
            Route("/version", version),
            Route("/events", events),
            Route("/favicon.ico", no_icon),  # browsers ask; a 404 would be noise in the console
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
    )


def _frame(state: PreviewState, journey_id: str, step_id: str, tier: str, locale: str) -> _Frame:
    try:
        rendered = state.render(journey_id, step_id, tier, locale)
    except TemplateError as exc:
        where = state.settings.templates_dir / exc.template
        line = f":{exc.line}" if exc.line else ""
        return _Frame(tier, locale, None, f"{where}{line}: {exc.message}")
    except (JourneyError, ValueError) as exc:
        return _Frame(tier, locale, None, str(exc))
    return _Frame(tier, locale, rendered.subject, None)


async def _version_stream(
    request: Request, state: PreviewState, poll_interval: float, stream_for: float
) -> AsyncIterator[str]:
    """``retry``, then an event each time the version differs from the last one sent (the
    first at once: the page compares it with the version it was rendered from)."""
    yield "retry: 500\n\n"
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + stream_for
    sent = None
    quiet_since = loop.time()
    while loop.time() < ends_at and not await request.is_disconnected():
        version = await loop.run_in_executor(None, state.versions.current)
        if version != sent:
            sent = version
            quiet_since = loop.time()
            yield f"event: version\ndata: {version}\n\n"
        elif loop.time() - quiet_since > 15:
            quiet_since = loop.time()
            yield ": still here\n\n"
        await asyncio.sleep(poll_interval)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def serve_preview(
    settings: Settings, host: str, port: int, *, announce: Callable[[str], None]
) -> None:
    """Serve until interrupted. The port is bound here first, so a taken one is a clear
    error rather than a server that logs and exits."""
    import socket

    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host.strip("[]"), port))
    except OSError as exc:
        listener.close()
        raise InvalidInput(f"--host {host} --port {port}: {exc.strerror or exc}") from None
    hosts = [*LOOPBACK_HOSTS, host]
    if host not in LOOPBACK_HOSTS:
        hosts = ["*"]  # reached by whatever name the network gives this machine
        announce(f"warning: listening on {host}: anyone who can reach it can read the previews")
    app = create_preview_app(PreviewState(settings, SystemClock()), allowed_hosts=hosts)
    shown = f"[{host}]" if ":" in host else host
    announce(f"previews at http://{shown}:{port}/ (Ctrl-C to stop)")
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[listener])
