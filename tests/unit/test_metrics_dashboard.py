"""``deploy/grafana/stepmail.json`` and the metrics agree: every series a panel queries is one
Stepmail exports (a renamed metric would leave a panel silently empty), and every metric we
export has a panel (a new one is not forgotten on the dashboard)."""

from __future__ import annotations

import json
import re

from orchestrator.observability.metrics import exported_names
from tests.support.environment import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "stepmail.json"
SERIES = re.compile(r"\b(stepmail_[a-z_]+)\b")


def queried_names() -> set[str]:
    document = json.loads(DASHBOARD.read_text("utf-8"))
    return {
        name
        for panel in document["panels"]
        for target in panel["targets"]
        for name in SERIES.findall(target["expr"])
    }


def test_every_queried_series_is_exported() -> None:
    assert queried_names() - exported_names() == set()


def test_every_exported_metric_has_a_panel() -> None:
    queried = queried_names()
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in exported_names()}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in queried}
    assert families - shown == set()


def test_panels_have_unique_ids_and_a_datasource_variable() -> None:
    document = json.loads(DASHBOARD.read_text("utf-8"))
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    assert document["templating"]["list"][0]["type"] == "datasource"
