"""The built wheel, installed into a fresh venv outside the repository, is a working Stepmail:
``--version``, ``db upgrade`` on a fresh SQLite and PostgreSQL database (the migrations ship
inside the package), ``check`` on journeys of the operator's, and ``stepmail api`` answering
``/healthz`` with its pages and API docs, all with no checkout to lean on."""

from __future__ import annotations

import re
import subprocess
import tomllib
import uuid
from collections.abc import Iterator

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orchestrator.api.api_docs import served_assets
from orchestrator.db.engine import normalise_database_url
from orchestrator.db.migrate import CHECKOUT_MIGRATIONS, alembic_config
from tests.release.conftest import Release, checkout_files, operator_files, stepmail
from tests.support.environment import ROOT, require_server

HANG = 120  # a hang guard for one command, never a timing assertion


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def head_revision() -> str:
    return str(ScriptDirectory.from_config(alembic_config("")).get_current_head())


def test_the_wheel_carries_migrations_pages_and_licences(release: Release) -> None:
    names = set(release.wheel_names())
    migrations = sorted(path.name for path in (CHECKOUT_MIGRATIONS / "versions").glob("*.py"))
    assert migrations, "the checkout has no migrations to compare with"
    for migration in migrations:
        assert f"orchestrator/_migrations/versions/{migration}" in names
    assert {"orchestrator/_migrations/env.py", "orchestrator/_migrations/script.py.mako"} <= names
    for page in (ROOT / "orchestrator" / "api" / "pages").glob("*.html"):
        assert f"orchestrator/api/pages/{page.name}" in names
    for asset in [*served_assets(), "VENDORED.json", "swagger-ui.html", "redoc.html"]:
        assert f"orchestrator/api/docs_assets/{asset}" in names, asset
    licences = {name.split("/licenses/", 1)[1] for name in names if "/licenses/" in name}
    assert {
        "LICENSE",
        "orchestrator/api/docs_assets/swagger_ui/LICENSE",
        "orchestrator/api/docs_assets/swagger_ui/NOTICE",
        "orchestrator/api/docs_assets/redoc/LICENSE",
    } <= licences
    assert not any(name.startswith(("alembic/", "tests/")) for name in names)


def test_every_file_of_the_package_ships_in_the_wheel(release: Release) -> None:
    """Pages, templates, static files of any later console: a file added under orchestrator/
    that package-data in pyproject.toml does not name fails here, not in production."""
    names = set(release.wheel_names())
    shipped = [name for name in checkout_files() if name.startswith("orchestrator/")]
    missing = [name for name in shipped if name not in names]
    assert shipped and missing == []


def test_the_sdist_holds_the_migration_sources_and_the_licence(release: Release) -> None:
    listed = subprocess.run(
        ["tar", "tzf", str(release.sdist)], capture_output=True, text=True, check=True
    ).stdout.split()
    root = release.sdist.name.removesuffix(".tar.gz")
    assert f"{root}/LICENSE" in listed
    assert f"{root}/alembic/env.py" in listed
    assert f"{root}/setup.py" in listed


def test_the_installed_command_tells_its_version(release: Release) -> None:
    assert stepmail(release, "--version").strip() == f"stepmail {project_version()}"


def test_the_installed_command_completes_in_the_shell(release: Release) -> None:
    # The script as `--show-completion` prints it from a terminal: that option finds the shell
    # in its parent processes, of which a detached run (nohup, a CI service) may have none.
    script = stepmail(release, env={"_STEPMAIL_COMPLETE": "source_bash"})
    assert "_STEPMAIL_COMPLETE=complete_bash" in script
    completion = {
        "_STEPMAIL_COMPLETE": "complete_bash",
        "COMP_WORDS": "stepmail db ",
        "COMP_CWORD": "2",
    }
    assert stepmail(release, env=completion).split() == ["upgrade"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_database(request: pytest.FixtureRequest, release: Release) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new schema of the test PostgreSQL database
    (its own search_path, so the shared tables of other tests are neither seen nor touched)."""
    if request.param == "sqlite":
        yield f"sqlite:///{release.home / f'fresh-{uuid.uuid4().hex}.db'}"
        return
    base = make_url(require_server("STEPMAIL_TEST_POSTGRES_URL"))
    schema = f"wheel_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_database_url(base.render_as_string(hide_password=False)))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_the_installed_command_migrates_a_fresh_database(
    release: Release, fresh_database: str
) -> None:
    stepmail(release, "db", "upgrade", env={"STEPMAIL_DATABASE_URL": fresh_database})
    engine = create_engine(normalise_database_url(fresh_database))
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        assert list(versions) == [head_revision()]
        assert connection.execute(text("SELECT count(*) FROM scheduled_send")).scalar() == 0
    engine.dispose()


def test_the_installed_check_renders_every_shipped_step(release: Release) -> None:
    stepmail(release, "check", env=operator_files(release))


def test_the_installed_api_answers_healthz_and_serves_its_pages(installed_api: str) -> None:
    assert httpx.get(f"{installed_api}/healthz").json() == {"status": "ok"}
    document = httpx.get(f"{installed_api}/openapi.json").json()
    assert document["info"]["version"] == project_version()
    bad_link = httpx.get(f"{installed_api}/unsubscribe/not-a-token")
    assert bad_link.status_code == 400
    assert bad_link.headers["content-type"].startswith("text/html")
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{installed_api}{page}").text
        links = re.findall(r'(?:src|href)="(/[^"]*)"', html)
        assert len(links) >= 2, html
        for link in links:
            assert httpx.get(f"{installed_api}{link}").status_code == 200, link
