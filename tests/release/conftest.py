"""A release as an operator gets it: the sdist and wheel built from this checkout's files, the
wheel installed into a fresh venv outside the repository. Built once per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.environment import ROOT
from tests.support.processes import clean_environ, free_port

# Hang guards for builds and installs, and for one command; never timing assertions.
INSTALL_HANG = 600
HANG = 120


@dataclass(frozen=True)
class Release:
    sdist: Path
    wheel: Path
    venv: Path  # the wheel installed alone (with its dependencies), outside the repository
    home: Path  # an empty folder outside the repository to run commands in

    @property
    def stepmail(self) -> Path:
        return self.venv / "bin" / "stepmail"

    def wheel_names(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as archive:
            return archive.namelist()


def checkout_files() -> list[str]:
    """What a clone of this working tree holds: tracked and new files, never ignored ones."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def copy_checkout(target: Path) -> Path:
    """A clean copy, so the build sees no venv, no var/ and no stale egg-info of the checkout."""
    for name in checkout_files():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination)
    return target


def run(command: list[str | Path], cwd: Path) -> None:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=INSTALL_HANG,
        env={k: v for k, v in os.environ.items() if not k.startswith("STEPMAIL_")},
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"


def same_versions_as_this_venv(path: Path) -> Path:
    """Constraints pinning every dependency to what this venv has: the fresh venv resolves
    the versions the suite tested, from pip's cache or local index, not whatever is newest."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = [line for line in frozen.splitlines() if "==" in line]
    path.write_text("\n".join(pins) + "\n")
    return path


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    work = tmp_path_factory.mktemp("release")
    source = copy_checkout(work / "source")
    dist = work / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source], cwd=work)
    (sdist,) = dist.glob("stepmail-*.tar.gz")
    (wheel,) = dist.glob("stepmail-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=work)
    constraints = same_versions_as_this_venv(work / "constraints.txt")
    run([venv / "bin" / "pip", "install", "--quiet", "-c", constraints, wheel], cwd=work)
    # As deploy/Dockerfile leaves its venv: what runs must not need pip or setuptools.
    run(
        [
            venv / "bin" / "python",
            "-m",
            "pip",
            "uninstall",
            "--quiet",
            "--yes",
            "pip",
            "setuptools",
        ],
        cwd=work,
    )
    home = work / "home"
    home.mkdir()
    yield Release(sdist=sdist, wheel=wheel, venv=venv, home=home)


def stepmail(release: Release, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the installed ``stepmail`` outside the repository; its output, or the test fails."""
    done = subprocess.run(
        [str(release.stepmail), *args],
        cwd=release.home,
        env={**clean_environ(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 0, f"stepmail {args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def operator_files(release: Release) -> dict[str, str]:
    """Journeys and templates of the operator's own, outside the repository."""
    journeys, templates = release.home / "journeys", release.home / "templates"
    if not journeys.exists():
        shutil.copytree(ROOT / "journeys", journeys)
        shutil.copytree(ROOT / "templates" / "mail", templates)
    return {"STEPMAIL_JOURNEYS_DIR": str(journeys), "STEPMAIL_TEMPLATES_DIR": str(templates)}


@pytest.fixture
def installed_api(release: Release) -> Iterator[str]:
    """``stepmail api`` from the wheel, development mode, on a fresh migrated SQLite file."""
    database = f"sqlite:///{release.home / f'api-{uuid.uuid4().hex}.db'}"
    port = free_port()
    env = {
        **clean_environ(),
        **operator_files(release),
        "STEPMAIL_ENVIRONMENT": "development",
        "STEPMAIL_DATABASE_URL": database,
        "STEPMAIL_OUTBOX_DIR": str(release.home / "outbox"),
        "STEPMAIL_PORT": str(port),
    }
    migrated = subprocess.run(
        [str(release.stepmail), "db", "upgrade"], cwd=release.home, env=env, timeout=HANG
    )
    assert migrated.returncode == 0
    log = release.home / f"api-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(release.stepmail), "api"],
            cwd=release.home,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_healthz(process, base, log)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=HANG)


def wait_for_healthz(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    for _ in range(HANG * 10):
        if process.poll() is not None:
            pytest.fail(f"stepmail api exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("stepmail api never answered /healthz")
