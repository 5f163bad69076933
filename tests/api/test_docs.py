"""``/docs`` and ``/redoc`` are served from the package's own files: the vendored Swagger UI
and ReDoc match their manifest and keep their licences, the pages hold no inline script and
point at nothing but this server, and no file of the package names a CDN."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.api.api_docs import ASSETS, served_assets
from orchestrator.api.app import create_app
from orchestrator.db.migrate import upgrade
from orchestrator.runtime import build_runtime
from tests.support.environment import ROOT, make_settings

PACKAGE = ROOT / "orchestrator"
# Hosts that serve front-end files; none may appear in anything the package ships.
CDN_HOSTS = re.compile(
    r"cdn\.jsdelivr\.net|unpkg\.com|cdnjs\.cloudflare\.com|cdn\.redoc\.ly|"
    r"fonts\.googleapis\.com|fonts\.gstatic\.com|esm\.sh|cdn\.skypack\.dev",
    re.IGNORECASE,
)


def manifest() -> list[dict[str, Any]]:
    return list(json.loads((ASSETS / "VENDORED.json").read_text()))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'stepmail.db'}"
    upgrade(url)
    runtime = build_runtime(make_settings(tmp_path, url))
    with TestClient(create_app(runtime)) as client:
        yield client
    runtime.close()


def test_the_vendored_files_are_the_ones_the_manifest_names() -> None:
    for package in manifest():
        for name, digest in package["files"].items():
            assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name
        folder = {Path(name).parent for name in package["files"]}
        (only,) = folder
        assert (ASSETS / only / "LICENSE").is_file(), f"{package['package']} has no licence"
        for change in package["patches"]:
            assert change["why"] and change["upstream_sha256"] != package["files"][change["file"]]


def test_no_file_of_the_package_names_a_cdn() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".js", ".css", ".html", ".json"}
        and CDN_HOSTS.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert offenders == []


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_docs_page_has_no_inline_script_and_links_only_this_server(
    client: TestClient, page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "default-src 'none'" in policy
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.DOTALL)
    assert scripts and all(
        'src="/' in attributes and not body.strip() for attributes, body in scripts
    )
    links = re.findall(r'(?:src|href|data-openapi-url)="([^"]*)"', response.text)
    assert links and all(link.startswith("/") and not link.startswith("//") for link in links)
    for link in links:
        assert client.get(link).status_code == 200, link


def test_redoc_gets_a_new_style_nonce_each_time(client: TestClient) -> None:
    first, second = (client.get("/redoc") for _ in range(2))
    nonces = [
        re.search(r"'nonce-([^']+)'", r.headers["content-security-policy"]) for r in (first, second)
    ]
    assert nonces[0] and nonces[1] and nonces[0].group(1) != nonces[1].group(1)
    assert f'data-nonce="{nonces[0].group(1)}"' in first.text


def test_assets_are_served_with_their_type_and_nothing_else_is(client: TestClient) -> None:
    assert served_assets()
    for name, media_type in served_assets().items():
        response = client.get(f"/docs/assets/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == media_type
        assert response.headers["x-content-type-options"] == "nosniff"
    for name in ("VENDORED.json", "swagger_ui/LICENSE", "../api_docs.py", "%2e%2e/app.py", "x.js"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name


def test_the_pages_follow_the_root_path_a_proxy_mounts_the_app_under(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stepmail.db'}"
    upgrade(url)
    runtime = build_runtime(make_settings(tmp_path, url))
    with TestClient(create_app(runtime), root_path="/mail") as client:
        page = client.get("/docs").text
    runtime.close()
    assert 'data-openapi-url="/mail/openapi.json"' in page
    assert 'src="/mail/docs/assets/swagger-ui-init.js"' in page
