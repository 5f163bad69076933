"""deploy/compose.yaml, checked without Docker (neither the engine nor the compose plugin is on
the CI machine): it follows the Compose Specification's JSON Schema, builds the one image of
deploy/Dockerfile, starts each role with a command the installed ``stepmail`` knows, orders
migration before the services and waits on health checks that exist, and names only settings
Stepmail has, with .env.example as the file it reads."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from orchestrator.settings import Settings
from tests.release.conftest import Release, stepmail
from tests.support.environment import IN_CI, ROOT

COMPOSE = ROOT / "deploy" / "compose.yaml"
SCHEMA = Path(__file__).with_name("compose_spec") / "compose-spec.json"
STEPMAIL_SERVICES = {"migrate", "api", "scheduler", "worker"}


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())  # resolves the x-stepmail merge keys
    assert isinstance(loaded, dict)
    return loaded


def services() -> dict[str, Any]:
    return dict(compose()["services"])


def test_the_file_follows_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)  # its $schema URL is a non-canonical one
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_postgres_redis_and_the_roles_of_one_image() -> None:
    assert set(services()) == {"postgres", "redis", *STEPMAIL_SERVICES}
    for name in STEPMAIL_SERVICES:
        service = services()[name]
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == ROOT, name
        assert (context / service["build"]["dockerfile"]) == ROOT / "deploy" / "Dockerfile"
        assert service["image"] == services()["api"]["image"]


def test_each_role_runs_a_command_the_installed_stepmail_knows(release: Release) -> None:
    for name in STEPMAIL_SERVICES:
        command = services()[name]["command"]
        stepmail(release, *[part for part in command if not part.startswith("-")][:2], "--help")
    assert services()["migrate"]["command"] == ["db", "upgrade"]
    worker = services()["worker"]["command"]
    stepmail(release, *worker, "--help")  # its options parse


def test_migration_first_and_every_awaited_service_has_a_health_check() -> None:
    assert services()["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services()["migrate"]["restart"] == "no"
    for name in STEPMAIL_SERVICES - {"migrate"}:
        waits = services()[name]["depends_on"]
        assert waits["migrate"] == {"condition": "service_completed_successfully"}
        assert waits["redis"] == {"condition": "service_healthy"}
    for name, service in services().items():
        for other, how in service.get("depends_on", {}).items():
            assert other in services(), f"{name} waits for {other}, which is no service"
            if how["condition"] == "service_healthy":
                assert "test" in services()[other]["healthcheck"], other


def test_each_long_running_role_probes_its_own_healthz() -> None:
    """The API on its port; the scheduler and workers on their metrics ports (the image's
    own check would probe an API they do not run); the one-shot migration has none."""
    assert services()["migrate"]["healthcheck"] == {"disable": True}
    ports = {"api": 8000, "scheduler": 9101, "worker": 9102}
    for name, port in ports.items():
        probe = " ".join(services()[name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in probe, name
    assert services()["api"]["ports"][0].endswith(":8000")
    defaults = Settings.model_construct()
    assert (defaults.scheduler_metrics_port, defaults.worker_metrics_port) == (9101, 9102)


def test_settings_come_from_env_example_and_name_only_real_settings() -> None:
    settings = {f"STEPMAIL_{name.upper()}" for name in Settings.model_fields}
    for name in STEPMAIL_SERVICES:
        service = services()[name]
        assert (COMPOSE.parent / service["env_file"]).resolve() == ROOT / ".env"
        assert set(service["environment"]) <= settings, name
    assert (ROOT / ".env.example").is_file()
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_every_variable_the_file_interpolates_is_in_env_example() -> None:
    interpolated = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text()))
    assert interpolated == {"POSTGRES_PASSWORD", "API_PUBLISH"}
    example = (ROOT / ".env.example").read_text()
    for variable in interpolated:
        assert re.search(rf"^(# )?{variable}=", example, re.MULTILINE), variable


@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_the_servers_are_pinned_to_a_major_version(name: str) -> None:
    image = services()[name]["image"]
    assert re.fullmatch(r"[a-z]+:\d+(-[a-z]+)?", image), image


def compose_client() -> list[str]:
    """Docker's compose client (v2 plugin or Debian's docker-compose): skip locally, fail in CI."""
    if (
        shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if IN_CI:
        pytest.fail("no compose client; .ci/run installs Debian's docker-compose")
    pytest.skip("no compose client (apt-get install docker-compose)")


def project(tmp_path: Path, env: str) -> Path:
    """The compose file where it lives, beside an .env, in a copy of the repository's layout."""
    (tmp_path / "deploy").mkdir()
    shutil.copy2(COMPOSE, tmp_path / "deploy" / "compose.yaml")
    (tmp_path / ".env").write_text(env)
    return tmp_path


def config(client: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    command = [*client, "--env-file", ".env", "-f", "deploy/compose.yaml", "config"]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=60)


def test_the_compose_client_reads_the_file_with_env_example_filled_in(tmp_path: Path) -> None:
    client = compose_client()
    example = (ROOT / ".env.example").read_text()
    filled = example.replace("\nPOSTGRES_PASSWORD=\n", "\nPOSTGRES_PASSWORD=s3cret-pg\n")
    done = config(client, project(tmp_path, filled))
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert set(resolved["services"]) == set(services())
    url = resolved["services"]["api"]["environment"]["STEPMAIL_DATABASE_URL"]
    assert url == "postgresql://stepmail:s3cret-pg@postgres:5432/stepmail"
    assert resolved["services"]["worker"]["deploy"]["replicas"] == 2


def test_the_compose_client_refuses_to_start_without_a_database_password(tmp_path: Path) -> None:
    client = compose_client()
    done = config(client, project(tmp_path, (ROOT / ".env.example").read_text()))
    assert done.returncode != 0
    assert "POSTGRES_PASSWORD" in done.stderr
