"""A plain clone runs its own tests: nothing under tests/ or bench/ reads outside the repository
(the SendGrid OpenAPI description is vendored in tests/fakes/sendgrid_openapi)."""

from __future__ import annotations

from tests.fakes.sendgrid_server import DEFAULT_SPEC
from tests.support.environment import ROOT


def test_the_sendgrid_description_is_inside_the_repository() -> None:
    assert DEFAULT_SPEC.is_relative_to(ROOT) and DEFAULT_SPEC.is_file()
    assert (DEFAULT_SPEC.parent / "LICENSE").is_file()


def test_no_test_or_bench_reads_the_shared_folder() -> None:
    readers = [
        path.relative_to(ROOT)
        for folder in ("tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if "shared/" in path.read_text(encoding="utf-8") and path.name != "test_self_contained.py"
    ]
    assert readers == []
