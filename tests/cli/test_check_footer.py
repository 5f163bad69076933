"""``stepmail check`` refuses a template whose footer lacks the sender's legal identity."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli import app
from tests.support.environment import ROOT
from tests.support.journeys import write_journeys

runner = CliRunner()
ONE_STEP = "name: News\nsteps:\n  - id: hello\n    after: 0d\n    template: onboarding/welcome\n"


def test_check_fails_a_template_whose_footer_lacks_the_postal_address(tmp_path: Path) -> None:
    journeys = write_journeys(tmp_path / "journeys", {"news": ONE_STEP})
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates" / "mail", templates)
    layout = templates / "layouts" / "base.html"
    text = layout.read_text("utf-8")
    assert text.count("{{ sender.postal_address }}<br>") == 2  # the ja and en footers
    layout.write_text(text.replace("{{ sender.postal_address }}<br>", ""), "utf-8")
    env = {
        "STEPMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'check.db'}",
        "STEPMAIL_JOURNEYS_DIR": str(journeys),
        "STEPMAIL_TEMPLATES_DIR": str(templates),
    }

    result = runner.invoke(app, ["check"], env=env)

    assert result.exit_code == 1
    output = result.output.replace("\n", "")
    for tier in ("high", "low", "tech"):
        for locale in ("ja", "en"):
            assert (
                f"onboarding/welcome.{tier}.{locale}.html: footer lacks the postal address "
                f"(news/hello, {tier}, {locale})"
            ) in output
    assert "footer lacks the sender name" not in output
    assert "6 problem(s)" in output
