"""Routes, console pages, commands, processes, tools and workers open no transaction: they
call services.

import-linter (``make layers``) keeps them from importing the store; this catches what an
import check cannot see, a transaction opened on the runtime's engine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.environment import ROOT

ADAPTERS = [
    "orchestrator/api",
    "orchestrator/console",
    "orchestrator/cli",
    "orchestrator/processes",
    "orchestrator/tools",
]
TRANSACTION = re.compile(r"\.begin\(|\.connect\(\)|\bSession\(|\.execute\(")


def adapter_files() -> list[Path]:
    files = [path for folder in ADAPTERS for path in sorted((ROOT / folder).rglob("*.py"))]
    return [*files, ROOT / "workers" / "__init__.py"]


@pytest.mark.parametrize("path", adapter_files(), ids=lambda path: path.name)
def test_no_transaction_is_opened_here(path: Path) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TRANSACTION.search(line)
    ]
    assert found == []
