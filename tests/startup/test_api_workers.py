"""``stepmail api --workers N``: the start-up checks run once, in the parent, before any worker
starts; then N processes serve one port, sharing the key a development process makes for
itself (so a link or cookie signed by one is good in all), each told how many they are (they
share out the slots for large event bodies)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from orchestrator.processes.serve import API_PROCESSES_VARIABLE
from orchestrator.settings import PROCESS_KEY_VARIABLE
from tests.startup.test_preflight import assert_one_line
from tests.support.processes import BIN, clean_environ, development_env, stepmail

HANG = 60  # a hang guard, not a timing assertion


def test_a_bad_setting_stops_the_parent_before_any_worker(tmp_path: Path) -> None:
    env = {**development_env(tmp_path), "STEPMAIL_JOURNEYS_DIR": str(tmp_path / "missing")}
    assert_one_line(stepmail("api", "--workers", "2", env=env, cwd=tmp_path), "STEPMAIL_JOURNEYS")


def test_an_unmigrated_database_stops_the_parent(tmp_path: Path) -> None:
    env = development_env(tmp_path, migrated=False)
    assert_one_line(stepmail("api", "--workers", "2", env=env, cwd=tmp_path), "STEPMAIL_DATABASE")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
    return {name: value for name, _, value in pairs}


def test_two_workers_serve_one_port_with_one_key(tmp_path: Path) -> None:
    env = development_env(tmp_path)  # no secrets: each process would make a key of its own
    process = subprocess.Popen(
        [str(BIN / "stepmail"), "api", "--workers", "2"],
        env={**clean_environ(), **env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{env['STEPMAIL_PORT']}/healthz"
    try:
        deadline = time.monotonic() + HANG
        while True:
            try:
                if httpx.get(url).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "api did not start"
            time.sleep(0.1)
        servers = [p for p in _children(process.pid) if "spawn_main" in _cmdline(p)]
        assert len(servers) == 2
        keys = {_environ(pid).get(PROCESS_KEY_VARIABLE) for pid in servers}
        assert len(keys) == 1 and None not in keys
        assert PROCESS_KEY_VARIABLE not in _environ(process.pid)  # made after the parent started
        assert {_environ(pid).get(API_PROCESSES_VARIABLE) for pid in servers} == {"2"}
        for _ in range(10):  # new connections: both workers answer
            assert httpx.get(url, headers={"Connection": "close"}).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=HANG)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
