"""Swagger UI at ``/docs`` and ReDoc at ``/redoc``, from files the package ships.

FastAPI's own pages load both from a CDN (blank offline, or wherever the CDN is blocked) and
start them with inline script. Here every file comes from ``docs_assets/`` (vendored from the
npm registry by ``scripts/vendor_docs_assets.py``, licences beside them) and each page is
started by a script file of its own, so the pages run under a CSP that allows nothing but
this server.
"""

from __future__ import annotations

import html
import json
import secrets
from functools import lru_cache
from pathlib import Path
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from orchestrator.api.routing import StrictRoute

ASSETS = Path(__file__).with_name("docs_assets")
OWN_SCRIPTS = ("swagger-ui-init.js", "redoc-init.js")
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
# No inline script at all. Styles: our files, plus (ReDoc only) the <style> elements ReDoc
# inserts: those of its styled-components carry this response's nonce; the two it inserts as
# its bundle loads, before it can be given one (perfect-scrollbar's CSS and an empty one), are
# admitted by their hashes. ReDoc's search index runs in a worker it builds from a blob: URL.
# A re-vendored ReDoc that inserts other styles fails tests/browser's check for violations.
REDOC_STYLE_HASHES = (
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'{styles}; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self';{workers} frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
ASSET_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}

router = APIRouter(route_class=StrictRoute, include_in_schema=False)


@lru_cache(maxsize=1)
def served_assets() -> dict[str, str]:
    """Every file a page may ask for, by its path under ``/docs/assets/``: the vendored files
    VENDORED.json lists (licences aside) and our two start scripts; nothing else answers."""
    manifest = json.loads((ASSETS / "VENDORED.json").read_text())
    vendored = [name for package in manifest for name in package["files"]]
    names = [*vendored, *OWN_SCRIPTS]
    return {
        name: MEDIA_TYPES[Path(name).suffix] for name in names if Path(name).suffix in MEDIA_TYPES
    }


@lru_cache(maxsize=8)
def _asset(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


def _page(request: Request, template: str, *, redoc: bool = False) -> HTMLResponse:
    """The page, its links under the app's root path (behind a proxy that mounts it there)."""
    root = html.escape(str(request.scope.get("root_path", "")).rstrip("/"), quote=True)
    nonce = secrets.token_urlsafe(18) if redoc else ""
    body = Template((ASSETS / template).read_text()).safe_substitute(root=root, nonce=nonce)
    styles = " ".join(["", f"'nonce-{nonce}'", *REDOC_STYLE_HASHES]) if redoc else ""
    headers = {
        "Content-Security-Policy": CSP.format(
            styles=styles, workers=" worker-src blob:;" if redoc else ""
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    return HTMLResponse(body, headers=headers)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return _page(request, "swagger-ui.html")


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return _page(request, "redoc.html", redoc=True)


@router.get("/docs/assets/{name:path}")
def docs_asset(name: str) -> Response:
    media_type = served_assets().get(name)
    if media_type is None:
        return Response(status_code=404, headers={"X-Content-Type-Options": "nosniff"})
    return Response(_asset(name), media_type=media_type, headers=ASSET_HEADERS)
