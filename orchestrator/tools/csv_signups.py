"""Reading ``stepmail enroll --csv``: the bytes decoded (UTF-8 with or without a BOM, or
Shift_JIS/CP932, as Excel saves a CSV in Japan), the header checked once, every row checked,
each refusal kept with its line number. Nothing here touches the database.

Detection is by elimination: a BOM means UTF-8; text that decodes as UTF-8 is UTF-8 (CP932
text with kana or kanji almost never does); otherwise text that decodes as CP932 is CP932
(CP932 is Shift_JIS with Microsoft's extra characters, so it reads plain Shift_JIS too).
Anything else is refused with the encodings tried; ``--encoding`` decides when it must.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from orchestrator.enrollment.signup import SignupRequest
from orchestrator.errors import FileAccessError, InvalidInput

ENCODINGS = ("auto", "utf-8", "utf-8-sig", "shift_jis", "cp932")
REQUIRED = ("external_id", "email", "name")
# Columns a CSV may carry: the signup's flat fields (attributes and consent are the hook's).
COLUMNS = tuple(
    name for name in SignupRequest.model_fields if name not in ("attributes", "consent")
)
MAX_BYTES = 200 * 1024 * 1024  # far above any real customer list; refuses a wrong file early


@dataclass
class CsvSignups:
    """What a file holds: the rows ready to enroll and the rows refused, by line number."""

    path: Path
    encoding: str
    signups: list[SignupRequest] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def read_csv_signups(path: Path, encoding: str = "auto") -> CsvSignups:
    if encoding not in ENCODINGS:
        raise InvalidInput(f"--encoding: one of {', '.join(ENCODINGS)}, not {encoding!r}")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InvalidInput(f"{path}: larger than {MAX_BYTES // 1024 // 1024} MiB")
        data = path.read_bytes()
    except OSError as exc:
        raise FileAccessError(f"{path}: cannot read: {exc.strerror}") from None
    text, used = decode(data, encoding, path)
    reader = csv.DictReader(io.StringIO(text, newline=""), restval=None)
    reader.fieldnames = _checked_header(reader.fieldnames, path)
    found = CsvSignups(path, used)
    try:
        for row in reader:
            line = reader.line_num
            if None in row:  # more cells than the header has columns
                found.refused.append((line, "more cells than the header has columns"))
                continue
            try:
                found.signups.append(validated(row, ""))
            except InvalidInput as exc:
                found.refused.append((line, str(exc)))
    except csv.Error as exc:
        raise InvalidInput(f"{path}:{reader.line_num}: not CSV: {exc}") from None
    return found


def decode(data: bytes, encoding: str, path: Path) -> tuple[str, str]:
    """The text and the encoding it was read with."""
    if encoding != "auto":
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise InvalidInput(
                f"{path}:{line}: not {encoding} (byte {exc.start}); try --encoding auto"
            ) from None
    if data.startswith(b"\xef\xbb\xbf"):
        return _strict(data, "utf-8-sig", path), "utf-8-sig"
    for candidate in ("utf-8", "cp932"):
        try:
            return data.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    raise InvalidInput(
        f"{path}: neither UTF-8 nor Shift_JIS/CP932; save it as UTF-8 or say --encoding"
    )


def validated(raw: Mapping[str, str | None], where: str) -> SignupRequest:
    """One signup from flags or a CSV row; the refusal names each field at fault."""
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


def _strict(data: bytes, encoding: str, path: Path) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{path}:{line}: starts as UTF-8 (a BOM) but is not UTF-8") from None


def _checked_header(columns: Sequence[str] | None, path: Path) -> list[str]:
    """Once for the file: a wrong header is one error, not one per row."""
    if not columns:
        raise InvalidInput(f"{path}:1: empty: the first line must name the columns")
    names = [c.strip(" \t") for c in columns]
    unknown = [c for c in names if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in names]
    repeated = sorted({c for c in names if names.count(c) > 1})
    problems = []
    if unknown:
        shown = ", ".join(repr(c[:40]) for c in unknown[:5])
        problems.append(f"unknown column(s) {shown} (known: {', '.join(COLUMNS)})")
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if problems:
        raise InvalidInput(f"{path}:1: " + "; ".join(problems))
    return names
