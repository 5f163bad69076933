"""Where ``stepmail db upgrade`` finds the migrations: the wheel's copy inside the package,
else the checkout's top-level ``alembic/`` folder; neither is one line naming both places."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.db.migrate import CHECKOUT_MIGRATIONS, migrations_dir
from orchestrator.errors import ConfigurationError


def alembic_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "env.py").write_text("# alembic environment\n")
    return path


def test_an_installed_package_uses_the_copy_it_carries(tmp_path: Path) -> None:
    installed = alembic_folder(tmp_path / "site-packages" / "orchestrator" / "_migrations")
    checkout = alembic_folder(tmp_path / "checkout" / "alembic")
    assert migrations_dir((installed, checkout)) == installed


def test_a_checkout_uses_its_alembic_folder(tmp_path: Path) -> None:
    checkout = alembic_folder(tmp_path / "checkout" / "alembic")
    assert migrations_dir((tmp_path / "orchestrator" / "_migrations", checkout)) == checkout
    assert migrations_dir() == CHECKOUT_MIGRATIONS  # this test runs from a checkout


def test_no_migrations_is_one_line_naming_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as raised:
        migrations_dir((tmp_path / "a", tmp_path / "b"))
    message = str(raised.value)
    assert "\n" not in message
    assert str(tmp_path / "a") in message and str(tmp_path / "b") in message
