"""Every shipped mail, for every tier and language, with ordinary and hostile customer data and
click tracking on: the HTML drawn with marks is the HTML drawn without, and the text part
filled from a layout is the text converted from the mail's own HTML. And layouts are reused:
were the marks silently off, the converter would run for every mail and this test would say so.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from pathlib import Path

import pytest

import orchestrator.rendering.text_part as text_part
from orchestrator.journeys.loader import load_journeys
from orchestrator.journeys.model import ALL_TIERS
from orchestrator.rendering.context import mail_context
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.samples import sample_customer
from orchestrator.rendering.slots import CLOSE, OPEN
from orchestrator.rendering.text_part import plain_text
from orchestrator.tracking.links import ClickLinks, click_key, tracking
from tests.content.test_onboarding_content import NOW, SENDER

ROOT = Path(__file__).resolve().parents[2]
KEY = click_key("k" * 40)
# Pieces of names and companies: words, markup, entities, and every kind of space or mark
# the converter might fold, drop or split on.
PIECES = ["Ann", "山田", "太郎", "O'Brien", "&", "<b>", "&amp;", "Zoë", " ", "  ", "\n",
          "\t", "\u00a0", "\u200b", "\u3000", OPEN, CLOSE, "\ue00e", "\ue00f", "\U000f0001",
          "", "x" * 40]  # fmt: skip


def hostile_text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))


def test_every_shipped_mail_reads_the_same_with_its_layout_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    converted: list[str] = []

    def counted(html: str) -> str:
        converted.append(html)
        return plain_text(html)

    monkeypatch.setattr(text_part, "plain_text", counted)
    renderer = MailRenderer(ROOT / "templates" / "mail", "ja")
    rng = random.Random(17)
    mails = 0
    for journey in load_journeys(ROOT / "journeys").values():
        for step, tier, locale in itertools.product(journey.steps, ALL_TIERS, ("ja", "en")):
            if renderer.resolve(step.template, tier, locale) is None:
                continue  # a step written for some tiers only
            for n in range(12):
                customer = sample_customer(tier, locale, NOW)
                if n < 9:  # ordinary, each another name
                    customer = replace(customer, name=f"{customer.name}{n}")
                else:
                    company = hostile_text(rng)
                    customer = replace(customer, name=hostile_text(rng), company=company)
                context = mail_context(
                    customer=customer,
                    journey=journey,
                    step=step,
                    sender=SENDER,
                    unsubscribe_url=f"https://example.test/unsubscribe/T{n}?a=1&b=2",
                    now=NOW,
                )
                links = ClickLinks(KEY, "https://example.test", mails)
                draft = renderer.draft(step.template, tier, locale, context, links=links)
                with tracking(links):
                    template = renderer.env.get_template(draft.template_name)
                    assert draft.html == template.render(context)
                assert draft.finish().text == plain_text(draft.html)
                mails += 1
    assert mails > 1000
    assert len(converted) < mails * 0.6  # ordinary mails filled from their layout
