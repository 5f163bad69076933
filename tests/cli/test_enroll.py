"""``stepmail enroll``: customers from flags or a CSV, every row checked before any is stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.db.engine import make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.db.tables import customers, scheduled_sends
from tests.support.cli import cli_files

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_files(tmp_path)


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_enroll_from_flags_and_from_csv(env: dict[str, str], tmp_path: Path) -> None:
    upgrade(env["STEPMAIL_DATABASE_URL"])
    code, output = invoke(
        env, "enroll", "--external-id", "a1", "--email", "a1@example.com", "--name", "A One"
    )
    assert code == 0, output
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(
        "external_id,email,name,annual_contract_value,locale\n"
        "b1,b1@example.com,B One,2000000,en\n"
        "b2,b2@example.com,B Two,50000,ja\n",
        encoding="utf-8",
    )
    code, output = invoke(env, "enroll", "--csv", str(csv_path))
    assert code == 0, output
    assert "2 customer(s) processed, 2 new" in output
    engine = make_engine(env["STEPMAIL_DATABASE_URL"])
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(customers)).scalar() == 3
        assert connection.execute(select(func.count()).select_from(scheduled_sends)).scalar() == 18
    engine.dispose()


def test_csv_cells_padded_with_spaces_are_read_as_typed(
    env: dict[str, str], tmp_path: Path
) -> None:
    upgrade(env["STEPMAIL_DATABASE_URL"])
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(
        "external_id,email,name,locale\nd1, d1@example.com, D One, en\n", encoding="utf-8"
    )
    code, output = invoke(env, "enroll", "--csv", str(csv_path))
    assert code == 0, output
    engine = make_engine(env["STEPMAIL_DATABASE_URL"])
    with engine.connect() as connection:
        row = connection.execute(select(customers.c.email, customers.c.locale)).one()
    engine.dispose()
    assert tuple(row) == ("d1@example.com", "en")


def test_a_bad_csv_row_names_file_and_line_and_stores_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    upgrade(env["STEPMAIL_DATABASE_URL"])
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(
        "external_id,email,name\nc1,c1@example.com,C One\nc2,not-an-email,C Two\n", encoding="utf-8"
    )
    code, output = invoke(env, "enroll", "--csv", str(csv_path))
    assert code == 2
    assert f"{csv_path}:3: email:" in output.replace("\n", "")
    engine = make_engine(env["STEPMAIL_DATABASE_URL"])
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(customers)).scalar() == 0
    engine.dispose()


HEADER = "external_id,email,name,company,locale\n"


def customers_count(env: dict[str, str]) -> int:
    engine = make_engine(env["STEPMAIL_DATABASE_URL"])
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(customers)).scalar()
    engine.dispose()
    return int(count or 0)


@pytest.mark.parametrize("encoding", ["shift_jis", "cp932", "utf-8-sig", "utf-8"])
def test_a_csv_as_excel_saves_it_in_japan_is_read(
    env: dict[str, str], tmp_path: Path, encoding: str
) -> None:
    upgrade(env["STEPMAIL_DATABASE_URL"])
    csv_path = tmp_path / "customers.csv"
    rows = (
        "j1,j1@example.com,山田 太郎,株式会社サンプル,ja\r\nj2,j2@example.com,髙橋 ①,ﾃｽﾄ商事,ja\r\n"
    )
    if encoding == "shift_jis":
        rows = rows.replace("髙橋 ①", "高橋 一")  # plain Shift_JIS has no 髙 or ①
    csv_path.write_bytes((HEADER.replace("\n", "\r\n") + rows).encode(encoding))
    result = runner.invoke(app, ["enroll", "--csv", str(csv_path)], env=env)
    assert result.exit_code == 0, result.output
    assert "2 customer(s) processed, 2 new" in result.stdout
    engine = make_engine(env["STEPMAIL_DATABASE_URL"])
    with engine.connect() as connection:
        names = set(connection.execute(select(customers.c.name)).scalars())
    engine.dispose()
    assert "山田 太郎" in names
    named = runner.invoke(app, ["enroll", "--csv", str(csv_path), "--encoding", "cp932"], env=env)
    if encoding in ("shift_jis", "cp932"):
        assert named.exit_code == 0, named.output
    else:  # UTF-8 read as CP932 is refused or mangled; a BOM'd file is never CP932
        assert named.exit_code in (0, 2)


def test_an_undecodable_file_is_one_line_naming_the_way_out(
    env: dict[str, str], tmp_path: Path
) -> None:
    csv_path = tmp_path / "latin.csv"
    csv_path.write_bytes(HEADER.encode() + b"x1,x1@example.com,\x80\x81\xff\xfe,\xa0,ja\n")
    result = runner.invoke(app, ["enroll", "--csv", str(csv_path)], env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {csv_path}: neither UTF-8 nor Shift_JIS/CP932; save it as UTF-8 or say "
        "--encoding\n"
    )


def test_a_wrong_header_is_one_error_not_one_per_row(env: dict[str, str], tmp_path: Path) -> None:
    csv_path = tmp_path / "customers.csv"
    body = "".join(f"w{n},w{n}@example.com,W {n}\n" for n in range(10_000))
    csv_path.write_text("external_id,emial,name\n" + body, encoding="utf-8")
    result = runner.invoke(app, ["enroll", "--csv", str(csv_path)], env=env)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {csv_path}:1: unknown column(s) 'emial'")
    assert "missing column(s) email" in line


def test_refused_rows_are_summarised_with_line_numbers_capped(
    env: dict[str, str], tmp_path: Path
) -> None:
    upgrade(env["STEPMAIL_DATABASE_URL"])
    csv_path = tmp_path / "customers.csv"
    good = "".join(f"g{n},g{n}@example.com,G {n}\n" for n in range(50))
    bad = "".join(f"b{n},not-an-address,B {n}\n" for n in range(30))
    csv_path.write_text("external_id,email,name\n" + good + bad, encoding="utf-8")
    result = runner.invoke(app, ["enroll", "--csv", str(csv_path)], env=env)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error: {csv_path}:52: email:")  # the first refused row
    assert len(lines) == 20 + 2
    assert lines[-2] == "error: … and 10 more refused row(s)"
    assert lines[-1] == "error: 30 of 80 row(s) refused; nothing stored"
    assert customers_count(env) == 0


def test_dry_run_checks_and_stores_nothing_then_batches_store_all(
    env: dict[str, str], tmp_path: Path
) -> None:
    upgrade(env["STEPMAIL_DATABASE_URL"])
    csv_path = tmp_path / "customers.csv"
    rows = "".join(f"k{n},k{n}@example.com,K {n}\n" for n in range(7))
    csv_path.write_text("external_id,email,name\n" + rows, encoding="utf-8")
    dry = runner.invoke(app, ["enroll", "--csv", str(csv_path), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "7 customer(s) checked, none refused; nothing stored (--dry-run)" in dry.stdout
    assert customers_count(env) == 0
    stored = runner.invoke(app, ["enroll", "--csv", str(csv_path), "--batch-size", "3"], env=env)
    assert stored.exit_code == 0, stored.output
    assert "7 customer(s) processed, 7 new" in stored.stdout
    again = runner.invoke(app, ["enroll", "--csv", str(csv_path), "--batch-size", "3"], env=env)
    assert "7 customer(s) processed, 0 new" in again.stdout
    assert customers_count(env) == 7
