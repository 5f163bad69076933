"""How much memory oversize request bodies cost a real ``stepmail api`` process.

Starts ``stepmail api`` on a throwaway SQLite database, streams bodies of ``--mb`` megabytes
(chunked, no Content-Length, like a client that lies about nothing and sends everything) at
the routes the hostile-input probe used, and prints the process's resident memory (VmRSS)
and its peak (VmHWM) after each. Prints numbers; asserts nothing.

    .venv/bin/python bench/body_limits.py            # 200 MB bodies
    .venv/bin/python bench/body_limits.py --mb 50
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-api-key"
CHUNK = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of each body (MB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stepmail-bodies-") as tmp:
        port = _free_port()
        server = _start(Path(tmp), port)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_up(base)
            print(f"{'request':<52} {'status':>6} {'VmRSS MB':>9} {'VmHWM MB':>9}")
            _report("(started)", "", server.pid)
            cases = [
                ("POST /hooks/signup, unsigned", "/hooks/signup", {}),
                *[
                    (f"POST /v1/suppressions, no token ({i}/4)", "/v1/suppressions", {})
                    for i in (1, 2, 3, 4)
                ],
                (
                    "POST /v1/suppressions, with the token",
                    "/v1/suppressions",
                    {"Authorization": f"Bearer {API_KEY}"},
                ),
                (
                    "POST /v1/events, with the token",
                    "/v1/events",
                    {"Authorization": f"Bearer {API_KEY}"},
                ),
            ]
            for label, path, headers in cases:
                status = _post(base + path, headers, args.mb)
                _report(label, status, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    database = f"sqlite:///{tmp / 'stepmail.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPMAIL_")}
    env.update(
        {
            "STEPMAIL_ENVIRONMENT": "development",
            "STEPMAIL_DATABASE_URL": database,
            "STEPMAIL_PORT": str(port),
            "STEPMAIL_API_KEY": API_KEY,
            "STEPMAIL_JOURNEYS_DIR": str(ROOT / "journeys"),
            "STEPMAIL_TEMPLATES_DIR": str(ROOT / "templates" / "mail"),
            "STEPMAIL_OUTBOX_DIR": str(tmp / "outbox"),
            "STEPMAIL_SIGNUP_HOOK_SECRET": "bench-signup-secret",
            "STEPMAIL_UNSUBSCRIBE_SECRET": "bench-unsubscribe-secret",
            "STEPMAIL_SENDER_EMAIL": "onboarding@acme.example",
            "STEPMAIL_SENDER_CONTACT": "support@acme.example",
            "STEPMAIL_CSM_TEAM_EMAIL": "cs@acme.example",
        }
    )
    cli = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    return subprocess.Popen(
        [*cli, "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _post(url: str, headers: dict[str, str], megabytes: int) -> int:
    def body() -> Iterator[bytes]:
        for _ in range(megabytes):
            yield b"x" * CHUNK

    try:
        response = httpx.post(
            url,
            content=body(),
            headers={"Content-Type": "application/json", **headers},
            timeout=120,
        )
    except httpx.TransportError:  # the server answered and closed before the upload ended
        return 0
    return response.status_code


def _report(label: str, status: int | str, pid: int) -> None:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rss, peak = (int(fields[name].split()[0]) // 1024 for name in ("VmRSS", "VmHWM"))
    print(f"{label:<52} {status!s:>6} {rss:>9} {peak:>9}", flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_up(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("stepmail api did not start within 30 s")


if __name__ == "__main__":
    main()
