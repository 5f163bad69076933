"""The command line given hostile files and arguments: one line naming the file and line, the
argument or the option, never a traceback, never unbounded memory, never a file outside
``var/preview``; stored text from outside never drives the terminal (probe L2-L5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.db.tables import customers, usage_events
from orchestrator.tools.csv_signups import MAX_LINE
from tests.support.cli import cli_installation, count, invoke

HEADER = "external_id,email,name,company,annual_contract_value,locale\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_installation(tmp_path)


ROW = "c1,c1@customer.jp,山田太郎,株式会社サンプル,0,ja\n"


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        # Shift_JIS/CP932 is read (enroll --encoding auto, as Excel saves a CSV in Japan);
        # what is neither is one line saying so.
        ("latin1.csv", (HEADER + "c1,c1@b.jp,Zoë,,0,ja\n").encode("latin-1"), ": neither UTF-8"),
        ("utf16.csv", (HEADER + ROW).encode("utf-16"), ": neither UTF-8"),
        (
            "extra.csv",
            (HEADER + "c1,c1@b.jp,T,Acme,0,ja,x,y\n").encode(),
            ":2: more cells than the header has columns",
        ),
        (
            "huge-cell.csv",
            (HEADER + "c1,c1@b.jp," + "x" * 200_000 + ",,0,ja\n").encode(),
            ":2: not CSV: field larger",
        ),
        (
            "twice.csv",
            b"external_id,email,name,name\nc1,c1@b.jp,A,B\n",
            ":1: repeated column(s) name",
        ),
        ("no-newline.csv", b"a" * (MAX_LINE + 10), ":1: a line longer than"),
        ("empty.csv", b"", ":1: empty"),
    ],
)
def test_a_hostile_csv_is_one_line_naming_file_and_line(
    env: dict[str, str], tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, lines = invoke(env, "enroll", "--csv", str(path))
    assert code == 2, lines
    assert len(lines) <= 2, lines  # a refused row is followed by the count refused
    assert lines[0].startswith(f"error: {path}") and says in lines[0], lines
    assert count(env, customers) == 0


def test_a_file_without_line_breaks_is_read_a_bounded_line_at_a_time(
    env: dict[str, str], tmp_path: Path
) -> None:
    """/dev/zero grew the process to 3.9 GB: the reader stops after one bounded line."""
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    code, lines = invoke(env, "enroll", "--csv", "/dev/zero")
    assert code == 2
    assert lines == [f"error: /dev/zero:1: a line longer than {MAX_LINE} characters"]


def test_a_folder_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    code, lines = invoke(env, "enroll", "--csv", str(tmp_path))
    assert code != 0 and len(lines) == 1 and lines[0].startswith(f"error: {tmp_path}"), lines


def test_a_good_csv_still_enrolls(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("\ufeff" + HEADER + ROW + "\n" + "c2,c2@b.jp,B,,0,en\n", encoding="utf-8")
    code, lines = invoke(env, "enroll", "--csv", str(path))
    assert code == 0, lines
    assert count(env, customers) == 2


@pytest.mark.parametrize(
    ("content", "says", "lines_expected"),
    [
        (HEADER + "c1,not-an-address,A,,0,ja\n", ":2: email: value is not a valid email", 2),
        ("external_id,email\n", ":1: missing column(s) name", 1),
        ("external_id,email,name,name\n", ":1: repeated column(s) name", 1),
        (None, ": cannot read: No such file", 1),
    ],
)
def test_a_file_name_with_a_line_break_is_named_on_one_line(
    env: dict[str, str], tmp_path: Path, content: str | None, says: str, lines_expected: int
) -> None:
    """The name is shown escaped: a CR LF in it made every message two ``error:`` lines."""
    path = tmp_path / "a\r\nb.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, lines = invoke(env, "enroll", "--csv", str(path))
    assert code != 0
    assert len(lines) == lines_expected, lines
    assert lines[0].startswith(f"error: {tmp_path}/a\\r\\nb.csv") and says in lines[0], lines


# -- L3: other commands ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["sends", "settle", "99999999999999999999", "--as", "sent"], "send_id"),
        (["tasks", "close", "99999999999999999999"], "task_id"),
        (
            ["simulate", "onboarding", "--tier", "low", "--locale", "ja", "--days", "99999999"],
            "--days",
        ),
        (["simulate", "onboarding", "--nps", "99"], "--nps"),
        (["simulate", "onboarding", "--start", "9999-12-31T00:00:00+00:00"], "--start"),
        (["simulate", "onboarding", "--event", "1d:nps_submitted:score=1e999"], "--event"),
        (["simulate", "onboarding", "--event", "1d:nps_submitted:score=NaN"], "--event"),
        # numbers past what a column holds or a calendar reaches, or processes without end
        (["sends", "unknown", "--limit", "99999999999999999999"], "--limit"),
        (["suppressions", "list", "--limit", "99999999999999999999"], "--limit"),
        (["tasks", "list", "--limit", "99999999999999999999"], "--limit"),
        (["tasks", "list", "--limit", "-1"], "--limit"),
        (["webhooks", "deliveries", "--endpoint", "99999999999999999999"], "--endpoint"),
        (["webhooks", "prune", "--older-than", "99999999"], "--older-than"),
        (["worker", "--processes", "100000"], "--processes"),
        (["worker", "--threads", "100000"], "--threads"),
        (["api", "--workers", "100000"], "--workers"),
        (["health", "daily", "--since", "0001-01-01T00:00:00+00:00"], "--since"),
        (["health", "daily", "--since", "2026-11-01T00:00:00"], "--since"),  # no offset
        (["plan", "--at", "0001-01-01T00:00:00+00:00"], "--at"),
        (["consent", "export", "--until", "9999-12-31"], "--until"),
        (["consent", "export", "--since", "9999-12-31T23:59:59"], "--since"),
        (["preview", "onboarding", "welcome", "--locale", "../../../../etc/passwd"], "--locale"),
    ],
)
def test_out_of_range_arguments_are_usage_errors(
    env: dict[str, str], tmp_path: Path, args: list[str], option: str
) -> None:
    code, lines = invoke(env, *args)
    assert code == 2, lines
    assert any(option in line for line in lines), lines


def test_a_date_out_of_range_is_quoted_as_it_was_typed(env: dict[str, str]) -> None:
    code, lines = invoke(env, "consent", "export", "--since", "0001-01-01")
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: --since '0001-01-01': "), lines


# -- L4: track --prop goes through the API's JSON rules ----------------------------------------


@pytest.mark.parametrize(
    "prop",
    ["x=NaN", "x=Infinity", "x=1e400", "x=99999999999999999999999", 'x="\\ud800"', 'x="a\\u0000b"'],
)
def test_track_refuses_what_the_api_refuses(env: dict[str, str], prop: str) -> None:
    code, _ = invoke(env, "enroll", "--external-id", "c1", "--email", "c1@b.jp", "--name", "T")
    assert code == 0
    code, lines = invoke(env, "track", "c1", "login", "--prop", prop)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: --prop x: "), lines
    assert count(env, usage_events) == 0


def test_track_still_types_numbers_and_booleans(env: dict[str, str]) -> None:
    invoke(env, "enroll", "--external-id", "c1", "--email", "c1@b.jp", "--name", "T")
    code, lines = invoke(env, "track", "c1", "login", "--prop", "n=3", "--prop", "ok=true")
    assert code == 0, lines
    assert count(env, usage_events) == 1


# -- L5: stored text from outside never drives the terminal ------------------------------------


def test_suppressions_list_shows_control_characters_escaped(env: dict[str, str]) -> None:
    osc = "\x1b[31mRED\x1b[0m\x1b]0;pwned\x07"
    assert invoke(env, "suppressions", "add", "y@b.jp", "--source", osc)[0] == 0
    assert invoke(env, "suppressions", "add", "x@b.jp", "--reason", "manual\r\nX")[0] == 0
    result = CliRunner().invoke(app, ["suppressions", "list"], env=env)
    assert result.exit_code == 0
    for control in ("\x1b", "\x07", "\r"):
        assert control not in result.output
    assert "\\x1b]0;pwned\\x07" in result.output
    assert len(result.output.splitlines()) == 2  # one line per entry, the CR LF shown escaped
    assert all(line.count("\t") == 3 for line in result.output.splitlines())


def test_an_error_message_cannot_carry_markup_or_escapes(env: dict[str, str]) -> None:
    code, lines = invoke(
        env, "enroll", "--external-id", "[/red]\x1b]0;x\x07", "--email", "a@b.jp", "--name", "T"
    )
    assert code == 2
    assert "\x1b" not in "".join(lines)


@pytest.mark.parametrize("command", [["status"], ["sends", "unknown"], ["plan"]])
def test_a_database_url_that_is_none_is_one_line_naming_the_setting(
    env: dict[str, str], command: list[str]
) -> None:
    """Commands that open just the database (``status``) once printed SQLAlchemy's traceback
    for a URL it cannot parse; the URL itself is never echoed (it may carry a password)."""
    code, lines = invoke({**env, "STEPMAIL_DATABASE_URL": "garbage:pass@"}, *command)
    assert code == 78, lines
    assert lines == [
        "error: STEPMAIL_DATABASE_URL is not a database URL (expected "
        "sqlite:///path/to/file.db or postgresql://user:password@host/db)"
    ]


@pytest.mark.parametrize("command", [["status"], ["sends", "unknown"], ["plan"]])
def test_a_database_on_no_engine_stepmail_runs_is_one_line(
    env: dict[str, str], command: list[str]
) -> None:
    """``mysql://`` reached SQLAlchemy's missing-driver traceback."""
    code, lines = invoke({**env, "STEPMAIL_DATABASE_URL": "mysql://u:secret@db/x"}, *command)
    assert code == 78, lines
    assert lines == [
        "error: STEPMAIL_DATABASE_URL: 'mysql' is not supported (SQLite or PostgreSQL)"
    ]
    assert "secret" not in "".join(lines)


@pytest.mark.parametrize("command", [["status"], ["sends", "unknown"], ["users", "list"]])
def test_a_mistyped_sqlite_path_is_named_and_never_created(
    env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    """A command that only reads made the folders and an empty database for a mistyped path,
    then said the database was not migrated."""
    typo = tmp_path / "typo" / "stepmial.db"
    code, lines = invoke({**env, "STEPMAIL_DATABASE_URL": f"sqlite:///{typo}"}, *command)
    assert code == 78, lines
    assert lines == [f"error: STEPMAIL_DATABASE_URL: the folder {typo.parent} does not exist"]
    assert not typo.parent.exists()
    typo.parent.mkdir()
    code, lines = invoke({**env, "STEPMAIL_DATABASE_URL": f"sqlite:///{typo}"}, *command)
    assert code == 78, lines
    assert lines == [
        f"error: STEPMAIL_DATABASE_URL: the database has no Stepmail tables yet ({typo} does "
        "not exist): run `stepmail db upgrade`"
    ]
    assert not typo.exists()


# -- schema --out: a path that cannot be written -----------------------------------------------


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("missing", "No such file or directory"),
        ("folder", "Is a directory"),
        ("/dev/full", "No space left on device"),
    ],
)
def test_schema_to_a_path_it_cannot_write_is_one_line_naming_it(
    env: dict[str, str], tmp_path: Path, where: str, says: str
) -> None:
    """A missing folder, a folder, a full disk: FileNotFoundError, IsADirectoryError, OSError
    tracebacks once; now one line naming the path, exit 74 (EX_IOERR) as consent export."""
    if where == "/dev/full" and not Path(where).exists():
        pytest.skip("no /dev/full")
    out = {"missing": tmp_path / "nowhere" / "schema.json", "folder": tmp_path}.get(
        where, Path(where)
    )
    code, lines = invoke(env, "schema", "--out", str(out))
    assert code == 74, lines
    assert lines == [f"error: {out}: cannot write: {says}"]


def test_schema_out_writes_the_file_and_names_it(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    code, lines = invoke(env, "schema", "--out", str(out))
    assert code == 0 and lines == [str(out)], lines
    assert out.read_text("utf-8").startswith("{")


@pytest.mark.parametrize(
    ("revision", "says"),
    [
        ("nope[/x]", "error: revision: Can't locate revision identified by 'nope[/x]'"),
        ("\udcff", "error: --revision: not UTF-8 text"),
        *[
            (
                form,
                f"error: revision: {form!r} is not one Alembic can reach (head, or an id "
                "such as 0016)",
            )
            for form in ("", "@", "head+1")  # Alembic asserted: AssertionError, a traceback
        ],
    ],
)
def test_db_upgrade_to_an_unknown_revision_is_one_line(
    env: dict[str, str], revision: str, says: str
) -> None:
    """Alembic's CommandError was a traceback."""
    code, lines = invoke(env, "db", "upgrade", "--revision", revision)
    assert code == 2, lines
    assert lines == [says]
