"""``stepmail enroll``: customers from flags or a CSV, every row checked before any is stored."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer
from pydantic import ValidationError
from rich.progress import track

from orchestrator.cli.output import console, errors
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.errors import FileAccessError, InvalidInput
from orchestrator.settings import load_settings


def enroll(
    csv_file: Annotated[Path | None, typer.Option("--csv", help="CSV with a header row")] = None,
    external_id: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option()] = None,
    company: Annotated[str, typer.Option()] = "",
    plan: Annotated[str, typer.Option()] = "",
    annual_contract_value: Annotated[str, typer.Option()] = "0",
    locale: Annotated[str, typer.Option()] = "ja",
    timezone: Annotated[str, typer.Option()] = "Asia/Tokyo",
    tier: Annotated[str | None, typer.Option()] = None,
    csm_name: Annotated[str | None, typer.Option()] = None,
    csm_email: Annotated[str | None, typer.Option()] = None,
    signed_up_at: Annotated[str | None, typer.Option(help="ISO 8601 with offset")] = None,
) -> None:
    """Enroll one customer from flags, or a CSV of them (all rows checked before storing any)."""
    if csv_file is not None:
        signups = _signups_from_csv(csv_file)
    else:
        raw = {
            "external_id": external_id,
            "email": email,
            "name": name,
            "company": company,
            "plan": plan,
            "annual_contract_value": annual_contract_value,
            "locale": locale,
            "timezone": timezone,
            "tier": tier,
            "csm_name": csm_name,
            "csm_email": csm_email,
            "signed_up_at": signed_up_at,
        }
        signups = [_validated(raw, "--")]
    _enroll_all(signups)


def _validated(raw: dict[str, str | None], where: str) -> SignupRequest:
    # A hand-written CSV pads cells ("b1, b1@example.com"); the model trims only after its
    # checks, so spaces and tabs around a cell go here (line breaks stay, and are refused).
    cells = {k: v.strip(" \t") for k, v in raw.items() if v is not None}
    data = {k: v for k, v in cells.items() if v}
    try:
        return SignupRequest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{where}{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(problems) from None


MAX_LINE = 1_000_000  # characters in one line of a CSV file: a file with no line break is
# read a line at a time, so without a bound one line is the whole file (/dev/zero: 4 GB)


_UNDECODED = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a non-UTF-8 byte


class _CsvProblem(Exception):
    """Why the file cannot be read on: one line naming the file and line."""


def _bounded_lines(handle: TextIO, path: Path) -> Iterator[str]:
    """The file's lines, each at most ``MAX_LINE`` characters, decoded as UTF-8."""
    number = 0
    while True:
        number += 1
        line = handle.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE:
            raise _CsvProblem(f"{path}:{number}: a line longer than {MAX_LINE} characters")
        if _UNDECODED.search(line):
            raise _CsvProblem(f'{path}:{number}: not UTF-8 text (in Excel, save as "CSV UTF-8")')
        yield line


def _signups_from_csv(path: Path) -> list[SignupRequest]:
    """Every row checked, every problem one line ``file:line: ...``; nothing read unbounded,
    nothing that is not UTF-8 (a Shift_JIS export from Excel is the usual case) read as text."""
    try:
        # Bytes that are not UTF-8 are kept as lone surrogates, so the line they are on is
        # named (a strict decoder fails a whole buffered block at once).
        handle = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise FileAccessError(f"{path}: cannot read: {exc.strerror}") from None
    signups, problems = [], []
    with handle:
        reader = csv.reader(_bounded_lines(handle, path))
        try:
            header = next(reader, None)
            if header is None:
                raise _CsvProblem(f"{path}: empty file (expected a header row)")
            twice = sorted({name for name in header if name and header.count(name) > 1})
            if twice:
                raise _CsvProblem(f"{path}:1: column {twice[0]!r} appears more than once")
            for row in reader:
                where = f"{path}:{reader.line_num}: "
                if not any(cell.strip() for cell in row):
                    continue  # a blank line
                if len(row) > len(header):
                    problems.append(f"{where}{len(row)} cells, the header has {len(header)}")
                    continue
                raw: dict[str, str | None] = dict(zip(header, row, strict=False))
                try:
                    signups.append(_validated(raw, where))
                except InvalidInput as exc:
                    problems.append(str(exc))
        except csv.Error as exc:
            problems.append(f"{path}:{reader.line_num}: {exc}")
        except _CsvProblem as exc:
            problems.append(str(exc))
        except OSError as exc:  # a folder, a device that fails to read
            raise FileAccessError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if problems:
        raise InvalidInput("\n".join(problems))
    return signups


def _enroll_all(signups: list[SignupRequest]) -> None:
    from orchestrator.runtime import build_runtime
    from orchestrator.services.signup import enroll_many

    runtime = build_runtime(load_settings())
    try:
        summary = enroll_many(
            runtime.engine,
            signups,
            journeys=runtime.journeys,
            rules=runtime.enrollment_rules(),
            clock=runtime.clock,
            progress=lambda items: track(
                items, description="enrolling", console=errors, disable=len(items) < 2
            ),
        )
    finally:
        runtime.close()
    console.print(f"{summary.processed} customer(s) processed, {summary.created} new")
