"""Reading a mail file (a template or the stylesheet) from the templates folder: the one way
every reader of those files takes, so none can be made to read outside the folder, without
end or not at all.

- A name is resolved as Jinja's ``FileSystemLoader`` resolves it (:func:`template_path`): no
  ``..``, and a leading ``/`` does not leave the folder. A version's snapshot of the files
  (:mod:`orchestrator.rendering.snapshot`) follows ``{% include %}`` names written in a
  template, so ``"../../../etc/hostname"`` would otherwise be stored and rendered.
- Only a regular file is read (:func:`read_mail_file`): ``/dev/zero`` (or a layout symlinked
  to it) would be read until memory ran out, and a FIFO would block its reader, so the file is
  opened without blocking and refused after ``fstat``.
- At most :data:`MAX_BYTES` plus one byte is read, whatever size the file claims: a template
  past :data:`~orchestrator.guards.jinja_nesting.MAX_SOURCE_CHARS` is refused anyway, and
  reading a 50 MB one whole cost every worker its memory.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from pathlib import Path

from jinja2 import TemplateNotFound
from jinja2.loaders import split_template_path

from orchestrator.guards.jinja_nesting import MAX_SOURCE_CHARS, TOO_LARGE

# UTF-8 takes at most 4 bytes a character: a file past this many bytes is past the bound.
MAX_BYTES = 4 * MAX_SOURCE_CHARS


class MailFileTooLarge(Exception):
    """A mail file past :data:`MAX_SOURCE_CHARS` characters (its message says so)."""

    def __init__(self) -> None:
        super().__init__(TOO_LARGE)


def template_path(templates_dir: Path, name: str) -> Path | None:
    """Where ``name`` is under ``templates_dir``, as Jinja's ``FileSystemLoader`` finds it, or
    None when Jinja would not look for it (``..`` in it, a separator inside a piece).

    The pieces hold no ``..`` and no separator, so the path is inside the folder."""
    try:
        pieces = split_template_path(name)
    except TemplateNotFound:
        return None
    return Path(posixpath.join(str(templates_dir), *pieces))


def read_mail_file(path: Path | str) -> str:
    """The text of a mail file, line ends made ``\\n`` as text mode makes them.

    Raises OSError (its ``strerror`` always set) when the file cannot be opened or is not a
    regular file, UnicodeDecodeError when it is not UTF-8 (``object`` holds the bytes read,
    for :func:`orchestrator.rendering.lookup.not_utf8`), and :class:`MailFileTooLarge` past
    the bound."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait for one
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except ValueError:  # a NUL or a lone surrogate in the name: no file has it
        raise FileNotFoundError(errno.ENOENT, "no file can have this name") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        file = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with file:
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise MailFileTooLarge()
    text = data.decode("utf-8")
    if len(text) > MAX_SOURCE_CHARS:
        raise MailFileTooLarge()
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
