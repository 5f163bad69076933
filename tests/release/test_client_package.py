"""``stepmail-client`` is a distribution of its own: its wheel installs into a fresh venv with
httpx and nothing of the server, imports without ``orchestrator``, and signs up a customer and
tracks an event against a real Stepmail on loopback from there."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestrator.api.app import create_app
from orchestrator.db.migrate import upgrade
from orchestrator.runtime import build_runtime
from tests.release.conftest import copy_checkout, run, same_versions_as_this_venv
from tests.support.environment import ROOT, SECRET, make_settings
from tests.support.live_server import serving
from tests.support.usage import API_KEY

CLIENT = "clients/python"
# The client's own dependency tree: httpx and what httpx needs.
HTTPX_TREE = {
    *("httpx", "httpcore", "h11", "anyio", "idna", "certifi", "sniffio", "typing-extensions"),
}
SERVER_ONLY = {"fastapi", "sqlalchemy", "sqlmodel", "alembic", "dramatiq", "stepmail", "pydantic"}

SCRIPT = """
import json, sys
from stepmail_client import StepmailClient
assert not any(name.split(".")[0] == "orchestrator" for name in sys.modules)
base, api_key, secret = sys.argv[1:4]
with StepmailClient(base, api_key, signup_secret=secret) as client:
    accepted = client.signup("acct_7", "hanako@customer.example", "Hanako", locale="en")
    tracked = client.track("acct_7", "login", id="first-login")
print(json.dumps({"created": accepted["created"], "stored": tracked["stored"]}))
"""


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("client")
    source = copy_checkout(work / "source") / CLIENT
    dist = work / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source], cwd=work)
    (wheel,) = dist.glob("stepmail_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "stepmail_client/py.typed" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=work)
    constraints = same_versions_as_this_venv(work / "constraints.txt")
    run([venv / "bin" / "pip", "install", "--quiet", "-c", constraints, wheel], cwd=work)
    return venv


def installed(venv: Path) -> set[str]:
    pip = [str(venv / "bin" / "pip"), "list", "--format", "json"]
    listed = subprocess.run(pip, capture_output=True, text=True, check=True).stdout
    return {entry["name"].lower().replace("_", "-") for entry in json.loads(listed)}


def test_the_client_installs_with_httpx_alone(client_venv: Path) -> None:
    packages = installed(client_venv) - {"pip", "setuptools"}
    assert "stepmail-client" in packages
    assert packages - {"stepmail-client"} <= HTTPX_TREE
    assert not packages & SERVER_ONLY


def test_the_installed_client_talks_to_a_real_stepmail(client_venv: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stepmail.db'}"
    upgrade(url)
    runtime = build_runtime(make_settings(tmp_path, url, api_key=API_KEY))
    with serving(create_app(runtime)) as base:
        done = subprocess.run(
            [client_venv / "bin" / "python", "-c", SCRIPT, base, API_KEY, SECRET],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    runtime.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"created": True, "stored": 1}


def test_the_client_carries_the_project_licence() -> None:
    assert (ROOT / CLIENT / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
