"""The Jinja environment for mail: sandboxed (templates cannot reach Python), HTML autoescaped,
and strict (an undefined variable is an error, not an empty string in a customer's inbox)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment


def make_mail_environment(templates_dir: Path) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir), encoding="utf-8"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
        cache_size=1000,
    )
    env.filters["money"] = format_money
    env.filters["date"] = format_date
    return env


def format_money(value: Decimal | int | float, currency: str = "JPY") -> str:
    """``1200000`` → ``¥1,200,000`` (JPY has no minor unit); other currencies keep two decimals."""
    if currency == "JPY":
        return f"¥{int(value):,}"
    return f"{Decimal(value):,.2f} {currency}"


def format_date(value: datetime, locale: str = "ja") -> str:
    """A date as each language writes it: ``2026年11月22日`` or ``November 22, 2026``."""
    if locale.startswith("ja"):
        return f"{value.year}年{value.month}月{value.day}日"
    return value.strftime("%B %-d, %Y")
