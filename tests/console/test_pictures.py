"""The console's pictures, as pure functions: chart geometry (exact values kept for tooltips
and the data table) and a journey drawn per tier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml

from orchestrator.console.charts import Series, bar_chart, line_chart
from orchestrator.console.journey_map import journey_map
from orchestrator.journeys.loader import load_journey
from orchestrator.journeys.model import Journey
from tests.support.environment import ROOT

DAY = datetime(2026, 11, 2, tzinfo=UTC)


def test_a_line_chart_puts_each_point_in_the_plot_and_keeps_the_exact_values() -> None:
    scores = [(DAY + timedelta(days=i), value) for i, value in enumerate([28, 55, 81])]
    chart = line_chart(
        "Health",
        [Series("score", scores)],
        x_label=lambda d: f"{d:%m/%d}",
        y_label=lambda v: f"{v:.0f}",
        y_range=(0, 100),
    )
    (line,) = chart.lines
    xs = [p.x for p in line.points]
    ys = [p.y for p in line.points]
    assert xs == sorted(xs) and xs[0] == chart.left and xs[-1] == chart.right
    assert all(chart.top <= y <= chart.bottom for y in ys)
    assert ys[0] > ys[1] > ys[2]  # higher scores are drawn higher (SVG y grows downwards)
    assert line.path.startswith("M") and line.path.count("L") == 2
    assert [p.title for p in line.points][-1] == "score · 11/04: 81"
    assert [t.label for t in chart.y_ticks] == ["0", "20", "40", "60", "80", "100"]
    assert chart.table == (("", "score"), ("11/02", "28"), ("11/03", "55"), ("11/04", "81"))
    assert [t.anchor for t in chart.x_ticks] == ["start", "middle", "end"]  # labels stay inside


def test_a_bar_chart_and_empty_charts() -> None:
    chart = bar_chart("Sends by state", [("sent", 120), ("failed", 3), ("pending", 40)])
    heights = [bar.height for bar in chart.bars]
    assert heights[0] > heights[2] > heights[1] > 0
    assert all(chart.left <= bar.x and bar.x + bar.width <= chart.right for bar in chart.bars)
    assert [t.label for t in chart.x_ticks] == ["sent", "failed", "pending"]
    assert chart.bars[1].title == "failed: 3"
    assert line_chart("empty", []).empty and bar_chart("empty", []).empty
    flat = line_chart("one point", [Series("s", [(1, 5.0)])])
    assert flat.lines[0].points[0].x == (flat.left + flat.right) / 2


def test_the_onboarding_journey_drawn_for_one_tier() -> None:
    journey = load_journey(ROOT / "journeys" / "onboarding.yaml")
    drawn = journey_map(journey, "high")
    order = [(s.id, s.timing, s.day) for s in drawn.steps]
    assert order == [
        ("welcome", "timed", 0),
        ("basics", "timed", 1),
        ("faq", "timed", 3),
        ("activation_nudge", "timed", 3),
        ("case_studies", "timed", 7),
        ("feedback", "timed", 30),
        ("next_steps", "event", None),
    ]
    nudge = drawn.steps[3]
    assert nudge.remainder == timedelta(hours=4)
    assert nudge.condition == "not usage.seen('report_created')"
    assert drawn.steps[-1].event == "report_created"
    assert all(step.from_csm for step in drawn.steps)  # high touch: from the CSM
    assert not any(step.from_csm for step in journey_map(journey, "tech").steps)
    assert drawn.trigger == "signup"


def test_a_wait_and_its_branches_drawn_and_steps_not_for_the_tier() -> None:
    journey = Journey.model_validate(
        yaml.safe_load("""
id: activation
name: Activation
steps:
  - id: welcome
    after: 0d
    template: onboarding/welcome
    wait_for: {event: report_created, timeout: 3d, if_seen: praised, if_timeout: nudged}
  - id: praised
    template: onboarding/next_steps
  - id: nudged
    after: 2h
    template: onboarding/activation_nudge
    tiers: [low, tech]
""")
    )
    drawn = journey_map(journey, "high")
    steps = {s.id: s for s in drawn.steps}
    assert steps["welcome"].wait is not None and steps["welcome"].wait.timeout == timedelta(days=3)
    assert (steps["nudged"].timing, steps["nudged"].at) == (
        "if_timeout",
        timedelta(days=3, hours=2),
    )
    assert (steps["praised"].timing, steps["praised"].event) == ("if_seen", "report_created")
    assert steps["praised"].branch_of == "welcome"
    assert [s.id for s in drawn.steps] == ["welcome", "nudged", "praised"]
    assert not steps["nudged"].for_tier and drawn.skipped_for_tier == 1
