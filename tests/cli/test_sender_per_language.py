"""The sender's identity per language: a Japanese mail's footer and From name follow Japanese
conventions (STEPMAIL_SENDER_*_JA, the address from the postal code and prefecture down), an
English one the English settings; ``stepmail check`` holds each footer to its language's
identity; a Japanese address in English order is refused naming the variable."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.errors import ConfigurationError
from orchestrator.journeys.loader import load_journeys
from orchestrator.rendering.compose import compose_mail
from orchestrator.rendering.context import sender_identity
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.samples import sample_customer
from orchestrator.settings import load_settings
from orchestrator.tools.preview import render_sample
from tests.support.environment import ROOT
from tests.support.journeys import write_journeys

runner = CliRunner()
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
JA = {
    "sender_name_ja": "株式会社リレー",
    "sender_postal_address_ja": "〒100-0005 東京都千代田区丸の内1-2-3 丸の内ビル5階",
    "sender_contact_ja": "サポート窓口 support@relay.example",
}
ONE_STEP = "name: News\nsteps:\n  - id: hello\n    after: 0d\n    template: onboarding/welcome\n"


def test_each_language_names_the_sender_in_its_own_conventions(tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        sender_name="Relay Inc.",
        sender_postal_address="1-2-3 Marunouchi, Chiyoda-ku, Tokyo 100-0005, Japan",
        **JA,
    )
    journey = load_journeys(ROOT / "journeys")["onboarding"]
    step = journey.step("welcome")
    renderer = MailRenderer(ROOT / "templates" / "mail", "ja")
    ja = render_sample(settings, renderer, journey, step, "tech", "ja", NOW)
    en = render_sample(settings, renderer, journey, step, "tech", "en", NOW)
    assert JA["sender_postal_address_ja"] in ja.html and "株式会社リレー" in ja.html
    assert "1-2-3 Marunouchi" not in ja.html
    assert "1-2-3 Marunouchi, Chiyoda-ku" in en.html and "Relay Inc." in en.html
    assert JA["sender_postal_address_ja"] not in en.html

    mail = compose_mail(
        rendered=ja,
        customer=sample_customer("tech", "ja", NOW),
        journey=journey,
        step=step,
        sender=sender_identity(settings),
        send_id=1,
        enrollment_id=1,
        unsubscribe_url="https://example.invalid/unsubscribe/x",
        now=NOW,
    )
    assert mail.sender.name == "株式会社リレー"


def test_check_holds_the_japanese_footer_to_the_japanese_identity(tmp_path: Path) -> None:
    journeys = write_journeys(tmp_path / "journeys", {"news": ONE_STEP})
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates" / "mail", templates)
    layout = templates / "layouts" / "base.html"
    # A layout that prints the default address in every language, not the language's own.
    text = layout.read_text("utf-8").replace("{{ sender.postal_address }}", "{{ default_address }}")
    layout.write_text(
        "{% set default_address = '1-2-3 Marunouchi, Chiyoda-ku, Tokyo' %}" + text, "utf-8"
    )
    env = {
        "STEPMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'check.db'}",
        "STEPMAIL_JOURNEYS_DIR": str(journeys),
        "STEPMAIL_TEMPLATES_DIR": str(templates),
        "STEPMAIL_SENDER_POSTAL_ADDRESS": "1-2-3 Marunouchi, Chiyoda-ku, Tokyo",
        "STEPMAIL_SENDER_POSTAL_ADDRESS_JA": JA["sender_postal_address_ja"],
    }
    result = runner.invoke(app, ["check"], env=env)
    output = result.output.replace("\n", "")
    assert result.exit_code == 1
    assert "welcome.tech.ja.html: footer lacks the postal address (news/hello, tech, ja)" in output
    assert "(news/hello, tech, en)" not in output


@pytest.mark.parametrize(
    "address", ["1-2-3 Marunouchi, Chiyoda-ku, Tokyo", "丸の内1-2-3 千代田区 東京都", "〒100-0005"]
)
def test_a_japanese_address_in_another_order_is_refused_naming_the_variable(
    tmp_path: Path, address: str
) -> None:
    with pytest.raises(ConfigurationError, match="STEPMAIL_SENDER_POSTAL_ADDRESS_JA"):
        load_settings(
            database_url=f"sqlite:///{tmp_path / 'x.db'}", sender_postal_address_ja=address
        )
