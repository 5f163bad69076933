"""The onboarding journey's mails: every step renders for every tier and locale, carries the
legal footer, reads differently per tier, speaks the customer's language and escapes their data."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import pytest

from orchestrator.customers.facts import CustomerFacts
from orchestrator.journeys.loader import load_journey
from orchestrator.journeys.model import ALL_TIERS, Journey
from orchestrator.rendering.context import SenderIdentity, mail_context
from orchestrator.rendering.renderer import MailRenderer, RenderedMail
from orchestrator.rendering.samples import sample_customer

ROOT = Path(__file__).resolve().parents[2]
STEPS = (
    "welcome",
    "basics",
    "next_steps",
    "faq",
    "activation_nudge",
    "case_studies",
    "feedback",
)
LOCALES = ("ja", "en")
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
SENDER = SenderIdentity(
    name="Relay Inc.",
    email="onboarding@relay.example",
    postal_address="1-2-3 Marunouchi, Chiyoda-ku, Tokyo 100-0005, Japan",
    contact="support@relay.example",
)
UNSUBSCRIBE_URL = "https://example.test/unsubscribe/TOKEN"
UNSUBSCRIBE_LABEL = {"ja": "配信停止", "en": "Unsubscribe"}
TEAM_SIGNATURE = {
    "ja": f"{SENDER.name} カスタマーサクセスチーム",
    "en": f"The {SENDER.name} Customer Success Team",
}
# Hiragana, katakana, CJK punctuation and ideographs, full-width forms.
JAPANESE = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
# Which links mark a tier: its mails carry one of its own and none of the others'.
HALLMARK_LINKS = {
    "high": ("booking_url",),
    "low": ("webinar_url", "group_session_url"),
    "tech": ("help_center_url", "guides_url"),
}

ALL_MAILS = list(itertools.product(STEPS, ALL_TIERS, LOCALES))
STEPS_AND_LOCALES = list(itertools.product(STEPS, LOCALES))


@pytest.fixture(scope="module")
def journey() -> Journey:
    return load_journey(ROOT / "journeys" / "onboarding.yaml")


@pytest.fixture(scope="module")
def renderer() -> MailRenderer:
    return MailRenderer(ROOT / "templates" / "mail")


def render(
    renderer: MailRenderer,
    journey: Journey,
    step_id: str,
    tier: str,
    locale: str,
    **changes: Any,
) -> RenderedMail:
    customer: CustomerFacts = replace(sample_customer(tier, locale, NOW), **changes)
    step = journey.step(step_id)
    context = mail_context(
        customer=customer,
        journey=journey,
        step=step,
        sender=SENDER,
        unsubscribe_url=UNSUBSCRIBE_URL,
        now=NOW + step.after,
    )
    return renderer.render(step.template, tier, locale, context)


def href(url: str) -> str:
    return f'href="{url}"'


# The NPS scale (layouts/macros.html, `survey: nps`) is the same in every tier on purpose.
NPS_SCALE = re.compile(
    r"\S+ を友人や同僚にすすめる.*?10 = ぜひすすめる|How likely are you to recommend.*?"
    r"10 = extremely likely",
    re.S,
)


def body_text(mail: RenderedMail, customer: CustomerFacts) -> str:
    """The text part above the footer (which names the customer's address) without the shared
    NPS scale, whitespace folded."""
    above_footer = mail.text[: mail.text.index(customer.email)]
    return " ".join(NPS_SCALE.sub("", above_footer).split())


def test_the_journey_has_the_onboarding_steps(journey: Journey) -> None:
    assert journey.id == "onboarding"
    assert journey.trigger == "signup"
    assert journey.grace == timedelta(hours=24)
    assert journey.csm_sender_tiers == ("high",)
    assert [(s.id, s.after.days, s.template) for s in journey.steps] == [
        ("welcome", 0, "onboarding/welcome"),
        ("basics", 1, "onboarding/basics"),
        ("next_steps", 0, "onboarding/next_steps"),
        ("faq", 3, "onboarding/faq"),
        ("activation_nudge", 3, "onboarding/activation_nudge"),
        ("case_studies", 7, "onboarding/case_studies"),
        ("feedback", 30, "onboarding/feedback"),
    ]
    assert journey.step("next_steps").on_event is not None
    assert journey.step("next_steps").on_event.event == "report_created"  # type: ignore[union-attr]
    assert journey.step("activation_nudge").when == "not usage.seen('report_created')"
    assert journey.goal is not None and journey.goal.event == "subscription_upgraded"
    assert all(step.description and step.tiers == ALL_TIERS for step in journey.steps)


def test_every_link_lives_in_the_journey_vars(journey: Journey) -> None:
    links = {k: v for k, v in journey.vars.items() if k.endswith("_url")}
    assert all(url.startswith("https://") for url in links.values())
    for template in (ROOT / "templates" / "mail" / "onboarding").glob("*.html"):
        hardcoded = re.findall(r'href="(?!\{\{)([^"]+)"', template.read_text(encoding="utf-8"))
        assert hardcoded == [], f"{template.name} hard-codes links: {hardcoded}"


@pytest.mark.parametrize(("step_id", "tier", "locale"), ALL_MAILS)
def test_every_mail_renders_with_the_legal_footer(
    renderer: MailRenderer, journey: Journey, step_id: str, tier: str, locale: str
) -> None:
    mail = render(renderer, journey, step_id, tier, locale)

    assert mail.template_name == f"onboarding/{step_id}.{tier}.{locale}.html"  # no fallback
    assert mail.subject.strip()
    for part in (mail.html, mail.text):
        for required in (SENDER.name, SENDER.postal_address, SENDER.contact, UNSUBSCRIBE_URL):
            assert required in part
        assert UNSUBSCRIBE_LABEL[locale] in part
        assert "{{" not in part and "{%" not in part
        assert "None" not in part
    assert f'<html lang="{locale}">' in mail.html
    assert mail.html.count('class="button-link"') == 1, "one call to action per mail"


@pytest.mark.parametrize(("step_id", "tier", "locale"), ALL_MAILS)
def test_the_preheader_is_set_and_hidden_from_the_text_part(
    renderer: MailRenderer, journey: Journey, step_id: str, tier: str, locale: str
) -> None:
    mail = render(renderer, journey, step_id, tier, locale)
    found = re.search(r'<div class="preheader" style="display: none;[^"]*">([^\u200c]*)', mail.html)
    assert found is not None
    preheader = found.group(1).strip()
    assert preheader
    assert preheader not in mail.text


@pytest.mark.parametrize(("step_id", "tier", "locale"), ALL_MAILS)
def test_mails_speak_the_customers_language(
    renderer: MailRenderer, journey: Journey, step_id: str, tier: str, locale: str
) -> None:
    mail = render(renderer, journey, step_id, tier, locale)
    if locale == "ja":
        assert JAPANESE.search(mail.subject)
        assert len(JAPANESE.findall(mail.text)) > 100
    else:
        for part in (mail.subject, mail.html, mail.text):
            assert not JAPANESE.search(part), JAPANESE.findall(part)


@pytest.mark.parametrize(("step_id", "locale"), STEPS_AND_LOCALES)
def test_each_tier_reads_differently_and_carries_its_hallmark(
    renderer: MailRenderer, journey: Journey, step_id: str, locale: str
) -> None:
    mails = {tier: render(renderer, journey, step_id, tier, locale) for tier in ALL_TIERS}

    for tier, mail in mails.items():
        own = [journey.vars[name] for name in HALLMARK_LINKS[tier]]
        assert any(href(url) in mail.html for url in own), f"{tier} lacks its hallmark link"
        others = [
            journey.vars[n] for t, names in HALLMARK_LINKS.items() if t != tier for n in names
        ]
        assert not [url for url in others if href(url) in mail.html], f"{tier} has another's link"
    csm_name = sample_customer("high", locale, NOW).csm_name
    assert csm_name and csm_name in mails["high"].html
    assert all(csm_name not in mails[tier].html for tier in ("low", "tech"))

    # Unrelated prose in one language scores about 0.3-0.5; a copy with a few words swapped, 0.9.
    bodies = {t: body_text(m, sample_customer(t, locale, NOW)) for t, m in mails.items()}
    for a, b in itertools.combinations(ALL_TIERS, 2):
        similarity = SequenceMatcher(None, bodies[a], bodies[b], autojunk=False).ratio()
        assert similarity < 0.7, f"{a} and {b} read alike ({similarity:.2f})"


@pytest.mark.parametrize(("step_id", "locale"), STEPS_AND_LOCALES)
def test_high_touch_comes_from_the_team_when_there_is_no_csm(
    renderer: MailRenderer, journey: Journey, step_id: str, locale: str
) -> None:
    mail = render(renderer, journey, step_id, "high", locale, csm_name=None, csm_email=None)

    assert TEAM_SIGNATURE[locale] in mail.html
    assert TEAM_SIGNATURE[locale] in mail.text
    assert href(journey.vars["booking_url"]) in mail.html
    assert "None" not in mail.html and "None" not in mail.subject


@pytest.mark.parametrize(("step_id", "locale"), STEPS_AND_LOCALES)
def test_a_csms_own_booking_link_wins_over_the_shared_one(
    renderer: MailRenderer, journey: Journey, step_id: str, locale: str
) -> None:
    own = "https://calendar.example/hanako-sato"
    customer = sample_customer("high", locale, NOW)
    attributes = {**customer.attributes, "csm_booking_url": own}
    mail = render(renderer, journey, step_id, "high", locale, attributes=attributes)

    assert href(own) in mail.html
    assert href(journey.vars["booking_url"]) not in mail.html


@pytest.mark.parametrize(("step_id", "tier", "locale"), ALL_MAILS)
def test_customer_data_is_escaped(
    renderer: MailRenderer, journey: Journey, step_id: str, tier: str, locale: str
) -> None:
    hostile = "<script>alert(1)</script>"
    mail = render(renderer, journey, step_id, tier, locale, name=hostile, company=f"<b>{hostile}")

    assert "<script" not in mail.html
    assert "<b>" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html


@pytest.mark.parametrize("locale", LOCALES)
def test_the_greeting_still_reads_without_a_name(
    renderer: MailRenderer, journey: Journey, locale: str
) -> None:
    mail = render(renderer, journey, "welcome", "tech", locale, name="")
    greeting = {"ja": "ご担当者様", "en": "Hi there,"}[locale]
    assert greeting in mail.text


@pytest.mark.parametrize("tier", ALL_TIERS)
def test_css_is_inlined(renderer: MailRenderer, journey: Journey, tier: str) -> None:
    mail = render(renderer, journey, "welcome", tier, "ja")

    assert 'style="' in mail.html
    assert re.search(r'<a class="button-link"[^>]*style="[^"]*color: #ffffff', mail.html)
    # The only <style> is the layout's: @media rules cannot be inlined.
    kept = re.findall(r"<style>(.*?)</style>", mail.html, flags=re.DOTALL)
    assert len(kept) == 1
    assert kept[0].strip().startswith("@media") and kept[0].count("@media") == 1


def test_an_unknown_locale_falls_back_to_japanese(renderer: MailRenderer, journey: Journey) -> None:
    mail = render(renderer, journey, "welcome", "low", "fr")

    assert mail.template_name == "onboarding/welcome.low.ja.html"
    assert '<html lang="ja">' in mail.html
    assert "配信停止" in mail.html
