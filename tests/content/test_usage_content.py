"""The mails of the usage-driven journeys (health actions, CSM introduction) meet the same bar
as onboarding: footer, language, one call to action, each tier's hallmark, escaping."""

from __future__ import annotations

import itertools
import re

import pytest

from orchestrator.journeys.loader import load_journey
from orchestrator.journeys.model import Journey
from orchestrator.rendering.renderer import MailRenderer
from tests.content.test_onboarding_content import (
    HALLMARK_LINKS,
    JAPANESE,
    LOCALES,
    ROOT,
    SENDER,
    TEAM_SIGNATURE,
    UNSUBSCRIBE_LABEL,
    UNSUBSCRIBE_URL,
    href,
    render,
)

JOURNEYS = {
    "health_upsell": "upsell",
    "health_tips": "tips",
    "health_follow_up": "follow_up",
    "csm_introduction": "introduction",
}
MAILS = [
    (journey_id, tier, locale)
    for journey_id, step_id in JOURNEYS.items()
    for tier in load_journey(ROOT / "journeys" / f"{journey_id}.yaml").step(step_id).tiers
    for locale in LOCALES
]


@pytest.fixture(scope="module")
def renderer() -> MailRenderer:
    return MailRenderer(ROOT / "templates" / "mail")


def journey(journey_id: str) -> Journey:
    return load_journey(ROOT / "journeys" / f"{journey_id}.yaml")


@pytest.mark.parametrize(("journey_id", "tier", "locale"), MAILS)
def test_every_mail_renders_with_footer_language_and_one_call_to_action(
    renderer: MailRenderer, journey_id: str, tier: str, locale: str
) -> None:
    j = journey(journey_id)
    mail = render(renderer, j, JOURNEYS[journey_id], tier, locale)
    for part in (mail.html, mail.text):
        for required in (SENDER.name, SENDER.postal_address, SENDER.contact, UNSUBSCRIBE_URL):
            assert required in part
        assert UNSUBSCRIBE_LABEL[locale] in part and "None" not in part
    assert mail.html.count('class="button-link"') == 1
    if locale == "ja":
        assert JAPANESE.search(mail.subject) and len(JAPANESE.findall(mail.text)) > 100
    else:
        assert not JAPANESE.search(mail.subject + mail.html)
    own = [j.vars[name] for name in HALLMARK_LINKS[tier]]
    assert any(href(url) in mail.html for url in own)
    others = [j.vars.get(n) for t, names in HALLMARK_LINKS.items() if t != tier for n in names]
    assert not [url for url in others if url and href(url) in mail.html]
    hostile = "<script>x</script>"
    escaped = render(renderer, j, JOURNEYS[journey_id], tier, locale, company=hostile)
    assert "<script" not in escaped.html


@pytest.mark.parametrize(("journey_id", "locale"), list(itertools.product(JOURNEYS, LOCALES)))
def test_high_touch_reads_without_a_csm(
    renderer: MailRenderer, journey_id: str, locale: str
) -> None:
    mail = render(
        renderer,
        journey(journey_id),
        JOURNEYS[journey_id],
        "high",
        locale,
        csm_name=None,
        csm_email=None,
    )
    assert TEAM_SIGNATURE[locale] in mail.text and "None" not in mail.subject + mail.html


def test_links_live_in_the_journey_vars() -> None:
    for folder in ("health", "csm"):
        for template in (ROOT / "templates" / "mail" / folder).glob("*.html"):
            text = template.read_text(encoding="utf-8")
            assert re.findall(r'href="(?!\{\{)([^"]+)"', text) == [], template.name
