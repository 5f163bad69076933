"""Helpers for the console's HTTP tests: an app on https (its cookies are Secure), users of
each role, and signing in the way a browser does (the login form's token and cookie)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from starlette.routing import Mount

from orchestrator.accounts.roles import Role
from orchestrator.api.app import create_app
from orchestrator.runtime import Runtime
from orchestrator.services.accounts import add_user

SITE = "https://stepmail.example.com"  # PUBLIC_BASE_URL of tests.conftest.make_settings
PASSWORD = "correct horse battery staple"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ROLES = ("viewer", "csm", "editor", "admin")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def address(role: str) -> str:
    return f"{role}@acme.example"


def console_client(runtime: Runtime) -> Iterator[TestClient]:
    """The app, on the site's own https origin, with one user per role (fast argon2id);
    a test module's ``console`` fixture yields from it."""
    for role in ROLES:
        add_user(
            runtime.engine, address(role), Role(role), PASSWORD, hasher=FAST, clock=runtime.clock
        )
    app = create_app(runtime)
    with TestClient(app, base_url=SITE, follow_redirects=False) as client:
        console_state(client).hasher = FAST
        yield client


def console_state(client: TestClient) -> Any:
    mount = next(r for r in client.app.routes if isinstance(r, Mount))  # type: ignore[attr-defined]
    return mount.app.state.console  # type: ignore[attr-defined]


def sign_in(client: TestClient, role: str, password: str = PASSWORD) -> Any:
    """A fresh sign-in (any earlier session's cookie is dropped first)."""
    client.cookies.clear()
    form = client.get("/console/login")
    token = CSRF.search(form.text)
    assert token is not None
    return client.post(
        "/console/login",
        data={"email": address(role), "password": password, "csrf_token": token.group(1)},
        headers={"Origin": SITE},
    )


def csrf_of(client: TestClient, path: str = "/console/") -> str:
    found = CSRF.search(client.get(path).text)
    assert found is not None, "no form token on the page"
    return found.group(1)


def post(
    client: TestClient,
    path: str,
    data: dict[str, str] | None = None,
    *,
    token: bool = True,
    origin: str | None = SITE,
    **headers: str,
) -> Any:
    fields = dict(data or {})
    if token:
        fields.setdefault("csrf_token", csrf_of(client))
    sent = {**({"Origin": origin} if origin else {}), **headers}
    return client.post(path, data=fields, headers=sent)
