"""A plain clone runs its own tests: nothing under tests/ or bench/ reads outside the repository
(the SendGrid OpenAPI description is vendored in tests/fakes/sendgrid_openapi)."""

from __future__ import annotations

from tests.fakes.sendgrid_server import DEFAULT_SPEC
from tests.support.environment import ROOT


def test_the_sendgrid_description_is_inside_the_repository() -> None:
    assert DEFAULT_SPEC.is_relative_to(ROOT) and DEFAULT_SPEC.is_file()
    assert (DEFAULT_SPEC.parent / "LICENSE").is_file()


# Spelled in two parts so this file does not itself contain the path it looks for.
SHARED_FOLDER = "shar" + "ed/"


def test_no_test_or_bench_reads_the_shared_folder() -> None:
    readers = [
        path.relative_to(ROOT)
        for folder in ("tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if SHARED_FOLDER in path.read_text(encoding="utf-8")
    ]
    assert readers == []
