"""YAML files people write by hand (journeys, the health score, the event catalogue): parsed
with their node tree kept, so a validation error can name the file, the line and the field.

A key written twice is refused with both lines: YAML loaders silently keep the last one, so
``after: 7d`` followed by ``after: 8d`` would otherwise ship as 8 days without a word.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from orchestrator.errors import JourneyError

Definition = TypeVar("Definition")

# Nesting a hand-written file never needs; deeper is refused before the tree is walked.
MAX_DEPTH = 64
# A journey, the health score or the catalogue is a few kilobytes; a bigger file is a mistake.
MAX_BYTES = 2 * 1024 * 1024
# Values a file may hold once its aliases are expanded. A few lines of aliases of aliases (the
# "billion laughs": ten of ten of ... ten values) are built as shared objects, but every walk
# of the data (the duplicate keys, validation) visits each of their 10^9 values: minutes of
# CPU for ``stepmail check`` and for every process loading the files. The shipped files hold
# under 2,000.
MAX_VALUES = 100_000


def read_mapping(path: Path, what: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    """The document's node tree and its data; JourneyError when it is unreadable, not YAML,
    has a key twice, or is not a mapping (``what`` names the kind of file in that message)."""
    return parse_mapping(read_text(path), path, what)


def read_text(path: Path) -> str:
    """A hand-written file's text; JourneyError when it is unreadable, not a regular file or
    implausibly big.

    A device or a pipe in the journeys folder would be read without end (``/dev/zero``) or
    block the reader (a FIFO with no writer), so it is refused before reading; and at most
    the bound plus one byte is read, whatever the size the file says it has."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait for one
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise JourneyError(str(path), None, None, "cannot read: not a regular file")
        with os.fdopen(descriptor, "rb") as file:
            data = file.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise JourneyError(str(path), None, None, f"larger than {MAX_BYTES // 1024**2} MiB")
        return data.decode("utf-8")
    except OSError as exc:  # the file is named already; the cause is enough
        raise JourneyError(str(path), None, None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise JourneyError(str(path), None, None, f"cannot read: {exc}") from None


def read_tree(path: Path, what: str) -> yaml.Node | None:
    """The node tree of :func:`read_mapping`, for a file whose text was parsed already (by
    :func:`parse_mapping`) kept from then: ``stepmail check`` loads every journey, then reads
    each again for the lines of its problems, and PyYAML parses ~2 µs a character (a journey
    with a 2 MB ``vars`` value took 4 s a parse, twice)."""
    text = read_text(path)
    kept = _TREES.get(_tree_key(text, path))
    return kept if kept is not None else parse_mapping(text, path, what)[0]


# The node trees of the texts parsed last, by a digest of the text and the path (no text kept).
_TREES: dict[bytes, yaml.Node] = {}
_TREES_KEPT = 64


def _tree_key(text: str, path: Path) -> bytes:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
    digest.update(os.fsencode(path))
    return digest.digest()


def parse_mapping(text: str, path: Path, what: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    """:func:`read_mapping` of a text already read (``path`` names it in errors)."""
    try:
        root, data = _load(text, path)
    except RecursionError:  # PyYAML composes recursively: thousands of [ or {
        raise JourneyError(str(path), None, None, "invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        line, problem = _yaml_problem(text, exc)
        raise JourneyError(str(path), line, None, f"invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise JourneyError(str(path), 1, None, f"{what} must be a mapping of fields")
    if root is not None:
        if len(_TREES) >= _TREES_KEPT:  # the oldest goes (pop: two threads may both try)
            _TREES.pop(next(iter(_TREES), b""), None)
        _TREES[_tree_key(text, path)] = root
    return root, data


def _load(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    """The node tree and the data built from it: one parse, checked before it is built."""
    loader = _HandWrittenLoader(text)  # reads the text: a forbidden character stops it here
    try:
        root = loader.get_single_node()
        refuse_alias_expansion(path, root)
        refuse_duplicate_keys(path, root)
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


class _HandWrittenLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a value its constructors cannot build is a YAML error at its
    line: ``2026-02-30``, year 0, an offset of 99 hours or an integer of 5,000 digits
    (ValueError), ``!!timestamp 'x'``, ``!!bool 'x'`` or ``!!int ''`` (AttributeError,
    KeyError, IndexError from inside PyYAML); the plain loader lets each through, a traceback
    for the person who wrote it. A number longer than Python reads is refused before it is
    built: a base-60 integer (``1:2:3``) of 400,000 parts took PyYAML minutes."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node.tag in _NUMBER_TAGS and len(node.value) > _MAX_NUMBER_CHARS:
            raise _unbuildable(node, f"a number of {len(node.value):,} characters")
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # Python's words say why: keep them
            raise _unbuildable(node, str(exc)) from None
        except (LookupError, AttributeError, TypeError):  # PyYAML's insides: say what it is not
            raise _unbuildable(node, f"not a valid {node.tag.rsplit(':', 1)[-1]}") from None


_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
_MAX_NUMBER_CHARS = 4_300  # Python's own limit on the digits int() reads


def _unbuildable(node: yaml.Node, why: str) -> yaml.constructor.ConstructorError:
    shown = str(node.value) if isinstance(node, yaml.ScalarNode) else node.tag
    if len(shown) > 40:
        shown = shown[:40] + "…"
    return yaml.constructor.ConstructorError(
        None, None, f"cannot read {shown!r}: {why}", node.start_mark
    )


def _yaml_problem(text: str, exc: yaml.YAMLError) -> tuple[int | None, str]:
    """The line and the cause of a YAML error, whichever kind PyYAML raised."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return (mark.line + 1 if mark else None), str(exc.problem)
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML forbids (NUL, ESC, DEL)
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return line, f"the character U+{code:04X} is not allowed in YAML"
    return None, str(exc).splitlines()[0]


def refuse_alias_expansion(path: Path, root: yaml.Node | None) -> None:
    """JourneyError when the document, its aliases expanded, holds more than MAX_VALUES
    values, or an alias inside the value it names (a value holding itself). Each node is
    counted once, so this walk follows the file's size, not the expansion's."""
    counted: dict[int, int] = {}  # node id -> values under it; -1 while being counted

    def count(node: yaml.Node) -> int:
        known = counted.get(id(node))
        if known == -1:
            line = node.start_mark.line + 1
            raise JourneyError(str(path), line, None, "a YAML alias inside the value it names")
        if known is not None:
            return known
        counted[id(node)] = -1
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(count(key) + count(value) for key, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(count(item) for item in node.value)
        if total > MAX_VALUES:
            line = node.start_mark.line + 1
            raise JourneyError(
                str(path),
                line,
                None,
                f"more than {MAX_VALUES:,} values once its YAML aliases are expanded",
            )
        counted[id(node)] = total
        return total

    if root is not None:
        count(root)


def refuse_duplicate_keys(path: Path, root: yaml.Node | None) -> None:
    """JourneyError at the second occurrence of a key, naming the line of the first."""
    for where, key, first, again in _duplicates(root, (), 0):
        field = ".".join(str(part) for part in (*where, key))
        raise JourneyError(
            str(path),
            again,
            field,
            f"the key {key!r} is written twice (lines {first} and {again}); "
            "keep one: YAML would silently use the last",
        )


def _duplicates(
    node: yaml.Node | None, where: tuple[str | int, ...], depth: int
) -> Iterator[tuple[tuple[str | int, ...], str, int, int]]:
    if depth > MAX_DEPTH:
        return
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in seen and name != "<<":
                yield where, name, seen[name], line
            seen.setdefault(name, line)
            yield from _duplicates(value, (*where, name), depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicates(item, (*where, index), depth + 1)


def validation_error(
    path: Path,
    root: yaml.Node | None,
    exc: ValidationError,
    known_keys: Collection[str] = (),
) -> JourneyError:
    """The problem pydantic found that explains the others, at its line: a missing key first
    (a union's other branches only complain because of it), in plain words.

    Parts of pydantic's location that are not in the file (a union member's name, a
    discriminator tag such as ``frequency``) are left out, so the field reads as written. An
    unknown key gets the closest of ``known_keys`` as a suggestion."""
    errors = sorted(exc.errors(), key=_cause_first)
    error = errors[0]
    loc = _file_location(root, error)
    if error["type"] == "missing":
        *parent, key = loc or ("?",)
        loc, message = tuple(parent), f"the required key {key!r} is missing"
    elif error["type"] == "extra_forbidden":
        message = "unknown key" + did_you_mean(str(loc[-1]) if loc else "", known_keys)
    else:
        message = error["msg"].removeprefix("Value error, ")
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    field = ".".join(str(part) for part in loc) or None
    at_key = "[key]" in error["loc"]  # a bad key: its own line, not its value's
    return JourneyError(str(path), line_of(root, error["loc"] if at_key else loc), field, message)


def did_you_mean(word: str, candidates: Iterable[str], prefix: str = "") -> str:
    """``; did you mean 'x'?`` for the closest candidate (``prefix`` + it, unquoted, with a
    prefix: ``usage.seen``), or nothing when none is close."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {prefix}{close[0]}?" if prefix else f"; did you mean {close[0]!r}?"


def written_part(root: yaml.Node | None, loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """The leading parts of ``loc`` the file holds (``trigger: x`` has no ``trigger.event``)."""
    node, kept = root, []
    for part in loc:
        node = _child(node, part)
        if node is None:
            break
        kept.append(part)
    return tuple(kept)


def _cause_first(error: ErrorDetails) -> int:
    """Missing keys first; otherwise pydantic's order, which is the model's field order."""
    return 0 if error["type"] == "missing" else 1


def _file_location(root: yaml.Node | None, error: ErrorDetails) -> tuple[str | int, ...]:
    """The location as the file has it: each part that names a key or item there, and the
    last part of a missing key (which by definition is not there)."""
    raw = error["loc"]
    node, kept = root, []
    for i, part in enumerate(raw):
        child = _child(node, part)
        if child is not None:
            node = child
            kept.append(part)
        elif i == len(raw) - 1 and error["type"] in ("missing", "extra_forbidden"):
            kept.append(part)
    return tuple(kept)


def line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """Follow a pydantic location through the YAML node tree to the line that holds it."""
    line = node.start_mark.line + 1 if node is not None else None
    for index, part in enumerate(loc):
        if list(loc[index + 1 : index + 2]) == ["[key]"] and isinstance(node, yaml.MappingNode):
            # pydantic's ``name.[key]``: the key itself is wrong, on the key's own line
            keys = [key for key, _ in node.value if key.value == part]
            return keys[0].start_mark.line + 1 if keys else line
        child = _child(node, part)
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                return value  # type: ignore[no-any-return]
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None


def read_when_changed(load: Callable[[Path], Definition]) -> Callable[[Path], Definition | None]:
    """``load`` for a file an installation may leave out (health, lifecycle, programs, the
    event catalogue): None without the file, else its content, read again only when the file
    changes, so a deploy that edits it is picked up without a restart.

    The API asks on every request, so the check is one ``stat``: the file is known by what it
    says of itself (device, inode, size, modification time), which a symlink switched to
    another release changes too, not by its resolved path (``resolve`` costs an ``lstat`` per
    path component)."""

    @lru_cache(maxsize=8)
    def cached(path: Path, _version: tuple[int, int, int, int]) -> Definition:
        return load(path)

    def read(path: Path) -> Definition | None:
        try:
            found = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:  # there but unreachable (a symlink loop): not "no file"
            raise JourneyError(str(path), None, None, f"cannot read: {exc.strerror}") from None
        return cached(path, (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns))

    return read


def load_problems(path: Path, load: Callable[[Path], object]) -> list[str]:
    """For ``stepmail check``: why an optional file that is there cannot be loaded, if so
    (a name that leads nowhere, a symlink loop, is there: ``exists`` would say it is not)."""
    if not os.path.lexists(path):
        return []
    try:
        load(path)
    except JourneyError as exc:
        return [str(exc)]
    return []
