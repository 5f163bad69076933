"""``stepmail check`` on mail templates a fuzz wrote: each is one problem line naming the file,
never a traceback (a RecursionError from walking a template's tree, an IndexError from a
render, a ValueError from a link that cannot be parsed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import check_problems, cli_files


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_files(tmp_path)


def check(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    return check_problems(env, *args)


def _faq(env: dict[str, str], content: str) -> tuple[Path, int]:
    """``content`` written at the start of a template's content block; the file and its line."""
    path = Path(env["STEPMAIL_TEMPLATES_DIR"]) / "onboarding/faq.tech.en.html"
    text = path.read_text("utf-8")
    assert text.count("{% block content %}\n") == 1
    path.write_text(text.replace("{% block content %}\n", f"{{% block content %}}\n{content}\n"))
    line = text.split("{% block content %}\n")[0].count("\n") + 2
    return path, line


@pytest.mark.parametrize(
    "expression",
    ["'a'" + "|lower" * 5000, "vars" + ".x" * 5000, "1" + " + 1" * 20000],
    ids=["filters", "lookups", "terms"],
)
def test_a_template_whose_tree_cannot_be_walked_is_one_line(
    env: dict[str, str], expression: str
) -> None:
    path, _ = _faq(env, f"<p>{{{{ {expression} }}}}</p>")
    code, problems = check(env)
    assert code == 1
    assert problems
    assert all(problem.startswith(str(path)) for problem in problems)


def test_an_index_the_template_asks_for_that_is_not_there_is_its_line(
    env: dict[str, str],
) -> None:
    path, line = _faq(env, "<p>{{ '{0.__class__}'.format_map({}) }}</p>")
    code, problems = check(env)
    assert code == 1
    assert problems
    assert all(problem.startswith(f"{path}:{line}: ") for problem in problems)
    assert "out of range" in problems[0]


def test_a_link_whose_host_cannot_be_read_is_a_bad_link(env: dict[str, str]) -> None:
    path, line = _faq(env, '<p><a href="http://[::1">x</a></p>')
    code, problems = check(env)
    assert code == 1
    assert problems == [
        f"{path}:{line}: link 'http://[::1' is not an http or https URL with a readable host "
        "(Invalid IPv6 URL) (onboarding/faq)"
    ]


@pytest.mark.parametrize(
    "content",
    [
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        "<p>{{ '%0999999999d' % 1 }}</p>",
    ],
    ids=["nested-loops", "macro-twice-a-level", "format-width"],
)
def test_a_template_past_the_step_budget_or_a_width_is_one_problem_at_its_line(
    env: dict[str, str], content: str
) -> None:
    """Minutes a render (27 s for the loops, a gigabyte for the width) in check, in the
    preview and in every worker; now a problem at the template's line, at once."""
    path, line = _faq(env, content)
    code, problems = check(env)
    assert code == 1
    assert problems
    assert all(problem.startswith(f"{path}:{line}: ") for problem in problems)
    assert "steps" in problems[0] or "at most 1,000,000" in problems[0]
