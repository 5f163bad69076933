"""How long the RFC 5322 form of a mail takes (``OutgoingMail.as_bytes``, what the outbox and
SMTP transports send), for the shipped onboarding welcome mails. Prints numbers, asserts none.

    .venv/bin/python bench/mail_bytes.py [--rounds 500]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.clock import SystemClock
from orchestrator.journeys.loader import load_journeys
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.settings import Settings
from orchestrator.tools.preview import render_sample
from orchestrator.transports.mail import Mailbox, OutgoingMail

ROOT = Path(__file__).resolve().parents[1]


def sample_mails() -> list[tuple[str, OutgoingMail]]:
    settings = Settings(
        journeys_dir=ROOT / "journeys", templates_dir=ROOT / "templates" / "mail", _env_file=None
    )
    renderer = MailRenderer(settings.templates_dir)
    journey = load_journeys(settings.journeys_dir)["onboarding"]
    step = journey.step("welcome")
    mails = []
    for tier in ("high", "low", "tech"):
        for locale in ("ja", "en"):
            rendered = render_sample(
                settings, renderer, journey, step, tier, locale, SystemClock().now()
            )
            mail = OutgoingMail(
                idempotency_key=f"stepmail-1-welcome-{tier}-{locale}",
                sender=Mailbox("onboarding@acme.example", "佐藤 花子 (Acme Cloud)"),
                to=Mailbox("taro@customer.example", "山田 太郎"),
                reply_to=Mailbox("hanako@acme.example", "佐藤 花子"),
                subject=rendered.subject,
                html=rendered.html,
                text=rendered.text,
                headers={
                    "List-Unsubscribe": "<https://stepmail.example.com/unsubscribe/"
                    + "t" * 60
                    + ">",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
                date=datetime(2026, 11, 2, tzinfo=UTC),
            )
            mails.append((f"{tier}/{locale}", mail))
    return mails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    rounds = parser.parse_args().rounds
    for label, mail in sample_mails():
        for _ in range(20):
            mail.as_bytes()
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(rounds):
                mail.as_bytes()
            best = min(best, (time.perf_counter() - started) / rounds)
        size = len(mail.as_bytes())
        print(f"{label:8} {best * 1e6:7.0f} µs per mail  {size:6} bytes")


if __name__ == "__main__":
    main()
