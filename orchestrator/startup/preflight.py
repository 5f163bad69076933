"""Check that what the settings point at is there and usable, before a service starts.

Each check returns one line naming the variable, or None. Without them a missing journeys
folder starts a service that enrolls signups in nothing, and a wrong database URL surfaces as
a driver traceback (or a ``no such table`` on the first request).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from orchestrator.db.engine import (
    NOT_A_DATABASE_URL,
    UPGRADE_HINT,
    make_engine,
    missing_sqlite_file,
    normalise_database_url,
    unsupported_database,
)
from orchestrator.errors import ConfigurationError
from orchestrator.journeys.loader import journey_files, load_all
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

CONNECT_TIMEOUT = 10  # seconds: an unreachable host fails start-up, never hangs it

Check = Callable[[Settings], str | None]


def preflight(settings: Settings, *, migrates_itself: bool = False) -> None:
    """Raise ConfigurationError with one line per problem; ``stepmail run`` migrates at
    start, so for it a database behind the code is fine (ahead of it is not)."""
    checks: list[Check] = [
        journeys_problem,
        templates_problem,
        webhook_key_problem,
        transport_problem,
        outbox_problem,
        redis_problem,
    ]
    problems = [problem for check in checks if (problem := check(settings))]
    problems += database_problems(settings.database_url, migrates_itself=migrates_itself)
    if problems:
        raise ConfigurationError("\n".join(problems))


def journeys_problem(settings: Settings) -> str | None:
    folder = journeys_folder_problem(settings)
    if folder:
        return folder
    report = load_all(settings.journeys_dir)
    return f"STEPMAIL_JOURNEYS_DIR: {report.errors[0]}" if report.errors else None


def journeys_folder_problem(settings: Settings) -> str | None:
    """The journeys folder is missing, not a folder or holds no journey: a mistyped
    ``STEPMAIL_JOURNEYS_DIR`` would otherwise read as an installation with nothing wrong."""
    directory = settings.journeys_dir
    folder = _folder_problem("STEPMAIL_JOURNEYS_DIR", directory)
    if folder:
        return folder
    if not journey_files(directory):
        return f"STEPMAIL_JOURNEYS_DIR: no journey files (*.yaml) in {_shown(directory)}"
    return None


def templates_folder_problem(settings: Settings) -> str | None:
    """The templates folder is missing, not a folder or holds no HTML template."""
    directory = settings.templates_dir
    folder = _folder_problem("STEPMAIL_TEMPLATES_DIR", directory)
    if folder:
        return folder
    if not any(path.is_file() for path in directory.rglob("*.html")):
        return f"STEPMAIL_TEMPLATES_DIR: no templates (*.html) in {_shown(directory)}"
    return None


def templates_problem(settings: Settings) -> str | None:
    """Every step of every journey finds its HTML template for each of its tiers in the
    default locale: that locale is the last resort of every other one (rendering/lookup), so
    a customer in any locale gets a mail, never ``failed: no HTML template``."""
    from orchestrator.rendering.renderer import MailRenderer

    folder = templates_folder_problem(settings)
    if folder:
        return folder
    renderer = MailRenderer(settings.templates_dir, settings.default_locale)
    locale = settings.default_locale
    missing = [
        f"{step.template} (tier {tier}; {journey.id}/{step.id})"
        for journey in load_all(settings.journeys_dir).journeys.values()
        for step in journey.steps
        for tier in step.tiers
        if renderer.resolve(step.template, tier, locale) is None
    ]
    if not missing:
        return None
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return (
        f"STEPMAIL_TEMPLATES_DIR: no template in {_shown(settings.templates_dir)} for "
        f"{missing[0]}{more} in STEPMAIL_DEFAULT_LOCALE {locale!r}, the locale every other "
        "one falls back to"
    )


def webhook_key_problem(settings: Settings) -> str | None:
    from orchestrator.provider_events.signature import load_public_key

    if settings.sendgrid_webhook_public_key is None:
        return None
    try:
        load_public_key(settings.sendgrid_webhook_public_key)
    except ConfigurationError as exc:
        return str(exc)
    return None


def transport_problem(settings: Settings) -> str | None:
    """Build the transport once (no connection is made): a missing SendGrid key shows now, not
    on a worker's first message."""
    from orchestrator.transports.factory import make_transport

    if settings.mail_transport == "outbox":
        return None  # outbox_problem: its folder is all it needs
    if settings.mail_transport == "smtp" and settings.smtp_username and not settings.smtp_password:
        return "STEPMAIL_SMTP_PASSWORD is unset (or empty) but STEPMAIL_SMTP_USERNAME is set"
    try:
        make_transport(settings).close()
    except ConfigurationError as exc:
        return str(exc)
    return None


def outbox_problem(settings: Settings) -> str | None:
    """The outbox transport writes a file per mail: find out now that it cannot."""
    if settings.mail_transport != "outbox":
        return None
    directory = settings.outbox_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-check-"):
            pass
    except OSError as exc:
        return f"STEPMAIL_OUTBOX_DIR: cannot write to {_shown(directory)}: {exc.strerror}"
    return None


def redis_problem(settings: Settings) -> str | None:
    """The host and port are in the driver's message; a password in the URL never is."""
    if settings.redis_url is None:
        return None
    try:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=CONNECT_TIMEOUT,
        )
    except ValueError as exc:
        return f"STEPMAIL_REDIS_URL is not a Redis URL: {exc}"
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"STEPMAIL_REDIS_URL: cannot reach Redis: {_first_line(exc)}"
    finally:
        client.close()
    return None


def database_problems(url: str, *, migrates_itself: bool = False) -> list[str]:
    """Reachable, and at this release's migration (or, if it migrates itself, not beyond)."""
    engine_or_problem = probe_engine(url, create=migrates_itself)
    if isinstance(engine_or_problem, str):
        return [engine_or_problem]
    engine = engine_or_problem
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = database_revisions(connection)
    except (SQLAlchemyError, OSError) as exc:
        return [f"STEPMAIL_DATABASE_URL: cannot connect: {_first_line(_cause(exc))}"]
    finally:
        engine.dispose()
    problem = migration_problem(current, migrates_itself=migrates_itself)
    return [problem] if problem else []


def probe_engine(url: str, *, create: bool = False) -> Engine | str:
    """A throwaway engine with a connect timeout, or the line saying why there is none.

    The URL itself is never echoed: a malformed one may still carry a password. A SQLite
    file (and its folder) is made only by a command that ``create``s the database
    (``stepmail run``, ``db upgrade``); a check never leaves one behind.
    """
    try:
        parsed = make_url(normalise_database_url(url))
    except (ArgumentError, ValueError):
        return NOT_A_DATABASE_URL
    backend = parsed.get_backend_name()
    unsupported = unsupported_database(backend)
    if unsupported:
        return unsupported
    try:
        if backend == "sqlite":
            missing = None if create else missing_sqlite_file(parsed.database)
            return missing or make_engine(url, poolclass=NullPool)
        return create_engine(
            parsed, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT}
        )
    except (SQLAlchemyError, ImportError, OSError) as exc:
        return f"STEPMAIL_DATABASE_URL: cannot use it: {_first_line(exc)}"


def database_revisions(connection: Connection) -> set[str]:
    """What Alembic recorded (read directly: Alembic's own reader logs at INFO)."""
    if not inspect(connection).has_table("alembic_version"):
        return set()
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    return {str(row[0]) for row in rows}


def migration_problem(current: set[str], *, migrates_itself: bool = False) -> str | None:
    """Compare the database's Alembic revision with this release's head."""
    from alembic.script import ScriptDirectory  # imported late: importing Alembic logs at INFO

    from orchestrator.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config(""))
    heads = set(script.get_heads())
    if current == heads:
        return None
    unknown = {revision for revision in current if not _known(script, revision)}
    if unknown:
        return (
            f"STEPMAIL_DATABASE_URL: the database is at revision {', '.join(sorted(unknown))}, "
            "which this release does not know (migrated by a newer release?)"
        )
    if migrates_itself:
        return None
    if not current:
        return f"STEPMAIL_DATABASE_URL: the database has no Stepmail tables yet: {UPGRADE_HINT}"
    return (
        f"STEPMAIL_DATABASE_URL: the database is at revision {', '.join(sorted(current))}, "
        f"this release needs {', '.join(sorted(heads))}: {UPGRADE_HINT}"
    )


def _known(script: ScriptDirectory, revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _folder_problem(variable: str, directory: Path) -> str | None:
    try:
        directory.stat()
    except (FileNotFoundError, NotADirectoryError):
        return f"{variable}: {_shown(directory)} does not exist"
    except OSError as exc:  # a symlink loop, a folder we may not enter
        return f"{variable}: {_shown(directory)}: {exc.strerror}"
    if not directory.is_dir():
        return f"{variable}: {_shown(directory)} is not a directory"
    return None


def _shown(path: Path) -> Path:
    """The path with its links followed, or as given where they loop (``resolve`` raises)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _cause(exc: BaseException) -> BaseException:
    """The driver's own error inside SQLAlchemy's wrapper: it says what actually failed."""
    return getattr(exc, "orig", None) or exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__
