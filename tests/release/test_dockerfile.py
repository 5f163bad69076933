"""deploy/Dockerfile, checked without a Docker engine (none on the CI machine): Docker's own
parser reads it, every COPY names files of the build context, the build stage's files build
the wheel, the image runs the installed ``stepmail`` for every role as a user that is not
root, and its HEALTHCHECK command answers against the installed API."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import zipfile
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import dockerfile
import pytest

from orchestrator.settings import Settings
from tests.release.conftest import Release, run, stepmail
from tests.support.environment import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ROLES = [["api"], ["scheduler"], ["worker"], ["run"], ["db", "upgrade"], ["check"]]


def instructions() -> tuple[Any, ...]:
    return tuple(dockerfile.parse_file(str(DOCKERFILE)))


def stages() -> list[list[Any]]:
    """The instructions of each FROM, in order."""
    found: list[list[Any]] = []
    for instruction in instructions():
        if instruction.cmd == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def only(stage: list[Any], cmd: str) -> Any:
    (instruction,) = [i for i in stage if i.cmd == cmd]
    return instruction


def copies(stage: list[Any]) -> list[tuple[list[str], str, tuple[str, ...]]]:
    return [(list(i.value[:-1]), i.value[-1], i.flags) for i in stage if i.cmd == "COPY"]


def ignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    return any(
        fnmatch(path, p)
        or fnmatch(parts[0], p)
        or any(fnmatch(x, p.removeprefix("**/")) for x in parts)
        for p in patterns
    )


def test_two_stages_and_the_second_copies_only_the_first_ones_venv() -> None:
    build, final = stages()
    assert only(build, "FROM").value[-2:] == ("AS", "build")
    froms = [copy for copy in copies(final) if any(f.startswith("--from=") for f in copy[2])]
    assert froms == [(["/opt/stepmail"], "/opt/stepmail", ("--from=build",))]
    assert "pip install ." in only(build, "RUN").value[0]


def test_every_copied_path_is_in_the_build_context() -> None:
    for stage in stages():
        for sources, _target, flags in copies(stage):
            if flags:
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such path"
                assert not ignored(source), f"COPY {source}: .dockerignore leaves it out"


def test_secrets_and_local_state_stay_out_of_the_build_context() -> None:
    for path in (".env", ".venv/bin/python", "var/stepmail.db", ".git/config", "tests/x.py"):
        assert ignored(path), path


def test_the_build_stage_copies_enough_to_build_the_wheel(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for sources, target, _flags in copies(stages()[0]):
        for source in sources:
            destination = (
                context / target / Path(source).name if target.endswith("/") else context / target
            )
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, destination)
    dist = tmp_path / "dist"
    run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, context],
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "orchestrator/_migrations/env.py" in names
    assert "orchestrator/api/docs_assets/swagger_ui/swagger-ui-bundle.js" in names


def test_the_image_runs_the_installed_entrypoint_for_every_role(release: Release) -> None:
    final = stages()[-1]
    assert only(final, "ENTRYPOINT").json and only(final, "ENTRYPOINT").value == ("stepmail",)
    assert only(final, "CMD").value == ("api",)
    env = dict(zip(only(final, "ENV").value[::2], only(final, "ENV").value[1::2], strict=True))
    assert env["PATH"].startswith("/opt/stepmail/bin:")
    with zipfile.ZipFile(release.wheel) as archive:
        (entry_points,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
        assert "stepmail = orchestrator.cli:main" in archive.read(entry_points).decode()
    for role in ROLES:
        stepmail(release, *role, "--help")
    settings = {f"STEPMAIL_{name.upper()}" for name in Settings.model_fields}
    assert {name for name in env if name.startswith("STEPMAIL_")} <= settings
    for folder in ("STEPMAIL_JOURNEYS_DIR", "STEPMAIL_TEMPLATES_DIR"):
        copied = {target for _sources, target, _flags in copies(final)}
        assert env[folder] in copied


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    final = stages()[-1]
    user = only(final, "USER").value[0]
    assert user.split(":")[0] not in ("root", "0")
    created = " ".join(i.value[0] for i in final if i.cmd == "RUN")
    assert f"--uid {user.split(':')[0]}" in created and f"--gid {user.split(':')[1]}" in created


def test_the_healthcheck_answers_for_a_live_api_and_fails_for_none(
    release: Release, installed_api: str
) -> None:
    check = only(stages()[-1], "HEALTHCHECK")
    assert check.value[0] == "CMD" and check.json
    command = list(check.value[1:])
    assert command[0] == "python"
    python = str(release.venv / "bin" / "python")
    port = installed_api.rsplit(":", 1)[1]
    alive = subprocess.run([python, *command[1:]], env={"STEPMAIL_PORT": port}, timeout=30)
    assert alive.returncode == 0, shlex.join(command)
    dead = subprocess.run(
        [python, *command[1:]], env={"STEPMAIL_PORT": "9"}, capture_output=True, timeout=30
    )
    assert dead.returncode != 0


@pytest.mark.parametrize("instruction", ["HEALTHCHECK", "EXPOSE", "WORKDIR"])
def test_the_final_stage_declares(instruction: str) -> None:
    assert only(stages()[-1], instruction)
