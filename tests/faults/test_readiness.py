"""``/readyz`` answers 503 naming the part at fault while the database (or Redis) is down, and
200 again once it is back; ``/healthz`` stays 200 throughout (the process itself is fine).
The servers are the fault matrix's private ones: the shared ones are never stopped."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.runtime import build_runtime
from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.support.environment import make_settings


def test_readiness_follows_the_database_and_redis(
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
) -> None:
    runtime = build_runtime(make_settings(tmp_path, database_url, redis_url=redis_url))
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}

        private_postgres.pause()
        try:
            down = client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["detail"].startswith("not ready: database unreachable")
            assert down.json()["checks"]["redis"] == "ok"
            assert client.get("/healthz").status_code == 200
        finally:
            private_postgres.start()
        assert client.get("/readyz").status_code == 200

        private_redis.stop()
        try:
            no_redis = client.get("/readyz")
            assert no_redis.status_code == 503
            assert "redis unreachable" in no_redis.json()["detail"]
        finally:
            private_redis.start()
        assert client.get("/readyz").status_code == 200
    finally:
        client.close()
        runtime.close()
