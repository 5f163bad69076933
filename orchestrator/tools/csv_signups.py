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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from orchestrator.enrollment.signup import SignupRequest
from orchestrator.errors import FileAccessError, InvalidInput, printable

ENCODINGS = ("auto", "utf-8", "utf-8-sig", "shift_jis", "cp932")
REQUIRED = ("external_id", "email", "name")
# Columns a CSV may carry: the signup's flat fields (attributes and consent are the hook's).
COLUMNS = tuple(
    name for name in SignupRequest.model_fields if name not in ("attributes", "consent")
)
MAX_BYTES = 200 * 1024 * 1024  # far above any real customer list; refuses a wrong file early
MAX_LINE = 1_000_000  # characters in one line: a file with no line break (/dev/zero) is one
# line, so without a bound one line is the whole file (it grew the process to 3.9 GB)
_MAX_LINE_BYTES = 4 * MAX_LINE  # a character is at most four bytes in any encoding read here


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
    where = printable(path)  # a file name may hold a line break: the message stays one line
    text, used = decode(read_bounded(path), encoding, where)
    _check_line_lengths(text, where)
    read = [0]  # lines handed to the reader: csv's line_num lags behind on a refused line

    def counted() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            read[0] += 1
            yield line

    reader = csv.DictReader(counted(), restval=None)
    reader.fieldnames = _checked_header(reader.fieldnames, where)
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
        raise InvalidInput(f"{where}:{read[0]}: not CSV: {exc}") from None
    return found


def read_bounded(path: Path) -> bytes:
    """The file's bytes, read a bounded line at a time (its size on disk says nothing for a
    device or a pipe): at most ``MAX_BYTES`` in all and ``MAX_LINE`` characters a line."""
    lines: list[bytes] = []
    total = 0
    where = printable(path)
    try:
        with path.open("rb") as handle:
            while line := handle.readline(_MAX_LINE_BYTES + 1):
                if len(line) > _MAX_LINE_BYTES:
                    raise InvalidInput(_too_long(where, len(lines) + 1))
                total += len(line)
                if total > MAX_BYTES:
                    raise InvalidInput(f"{where}: larger than {MAX_BYTES // 1024 // 1024} MiB")
                lines.append(line)
    except OSError as exc:  # missing, a folder, a device that fails to read
        raise FileAccessError(f"{where}: cannot read: {exc.strerror or exc}") from None
    return b"".join(lines)


def _check_line_lengths(text: str, where: str) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise InvalidInput(_too_long(where, number))


def _too_long(where: str, number: int) -> str:
    return f"{where}:{number}: a line longer than {MAX_LINE} characters"


def decode(data: bytes, encoding: str, where: str) -> tuple[str, str]:
    """The text and the encoding it was read with (``where`` names the file in a refusal)."""
    if encoding != "auto":
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise InvalidInput(
                f"{where}:{line}: not {encoding} (byte {exc.start}); try --encoding auto"
            ) from None
    if data.startswith(b"\xef\xbb\xbf"):
        return _strict(data, "utf-8-sig", where), "utf-8-sig"
    for candidate in ("utf-8", "cp932"):
        try:
            return data.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    raise InvalidInput(
        f"{where}: neither UTF-8 nor Shift_JIS/CP932; save it as UTF-8 or say --encoding"
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


def _strict(data: bytes, encoding: str, where: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{where}:{line}: starts as UTF-8 (a BOM) but is not UTF-8") from None


def _checked_header(columns: Sequence[str] | None, where: str) -> list[str]:
    """Once for the file: a wrong header is one error, not one per row."""
    if not columns:
        raise InvalidInput(f"{where}:1: empty: the first line must name the columns")
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
        problems.append(f"repeated column(s) {', '.join(printable(c) for c in repeated)}")
    if problems:
        raise InvalidInput(f"{where}:1: " + "; ".join(problems))
    return names
