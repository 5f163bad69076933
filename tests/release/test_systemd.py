"""deploy/systemd: the units pass ``systemd-analyze verify`` with their ExecStart pointed at the
installed wheel's ``stepmail``, score "OK" in ``systemd-analyze security``, carry one and the
same hardening block, and start commands the installed ``stepmail`` knows. Nothing here starts
them under systemd: the CI machine has no running systemd."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.release.conftest import Release, stepmail
from tests.support.environment import IN_CI, ROOT

UNITS = ROOT / "deploy" / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
INSTALLED = "/opt/stepmail"


def systemd_analyze() -> str:
    program = shutil.which("systemd-analyze")
    if program is None:
        if IN_CI:
            pytest.fail("systemd-analyze is missing; .ci/run installs systemd")
        pytest.skip("systemd-analyze is missing (apt-get install systemd)")
    return program


def installed_units(release: Release, target: Path) -> list[Path]:
    """The units as an operator installs them, /opt/stepmail being the release's venv."""
    target.mkdir()
    for unit in UNITS.iterdir():
        text = unit.read_text().replace(INSTALLED, str(release.venv))
        (target / unit.name).write_text(text)
    return sorted(target.iterdir())


def test_the_units_verify(release: Release, tmp_path: Path) -> None:
    units = installed_units(release, tmp_path / "units")
    done = subprocess.run(
        [systemd_analyze(), "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == ""  # warnings too


def test_the_services_are_hardened(release: Release, tmp_path: Path) -> None:
    for unit in installed_units(release, tmp_path / "units"):
        if unit.suffix != ".service":
            continue
        done = subprocess.run(
            [systemd_analyze(), "security", "--offline=true", str(unit)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", done.stdout)
        assert found, done.stdout + done.stderr
        assert float(found.group(1)) < 2.0 and found.group(2) == "OK", found.group(0)


def hardening(unit: Path) -> str:
    text = unit.read_text()
    return text[
        text.index("EnvironmentFile=") : text.index("\n[Install]") if "[Install]" in text else None
    ]


def test_every_service_carries_the_same_settings_and_hardening() -> None:
    blocks = {unit.name: hardening(unit).strip() for unit in SERVICES}
    assert len(set(blocks.values())) == 1, sorted(blocks)
    (block,) = set(blocks.values())
    for option in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert option in block


def test_each_service_starts_a_command_the_installed_stepmail_knows(release: Release) -> None:
    roles = set()
    for unit in SERVICES:
        (start,) = re.findall(r"^ExecStart=(.+)$", unit.read_text(), re.MULTILINE)
        program, *args = shlex.split(start)
        assert program == f"{INSTALLED}/bin/stepmail"
        stepmail(release, *args, "--help")
        roles.add(args[0])
    assert roles == {"api", "scheduler", "worker", "db"}
