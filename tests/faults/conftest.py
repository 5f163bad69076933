"""Fixtures of the fault matrix: one private PostgreSQL cluster and one private Redis for the
session (tests may restart them), a fresh migrated database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from orchestrator.db.migrate import upgrade
from tests.faults.servers import PrivatePostgres, PrivateRedis

TEMPLATE = "stepmail_faults_template"
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        cluster.init()
        cluster.sql("postgres", f"CREATE DATABASE {TEMPLATE} OWNER stepmail")
        upgrade(cluster.url(TEMPLATE))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(private_postgres: PrivatePostgres) -> str:
    """A migrated, empty database of this test's own (a copy of the migrated template)."""
    name = f"stepmail_fault_{next(_databases)}"
    private_postgres.sql("postgres", f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} OWNER stepmail")
    return private_postgres.url(name)


@pytest.fixture
def redis_url(private_redis: PrivateRedis) -> str:
    if private_redis.process is None or private_redis.process.poll() is not None:
        private_redis.start()  # a test restarted it and failed before it came back
    private_redis.flush()
    return private_redis.url
