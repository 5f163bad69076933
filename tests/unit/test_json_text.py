"""JSON parameters written by orjson say what ``json.dumps`` said, and what orjson refuses
still gets written (:mod:`orchestrator.db.json_text`)."""

from __future__ import annotations

import json

import pytest

from orchestrator.db.json_text import json_text

SAID_THE_SAME = [
    [{"logins": {"raw": 12, "value": 0.4, "weight": 0.3}, "nps": {"raw": None, "value": 0.5}}],
    [{"adoption": {"raw": ["approvals", "reports"], "value": 1.0, "weight": 2.5}}],
    [{}, {"report_type": "承認フロー", "emoji": "📈", "quote": 'a "b" \\ c', "ctl": "\t\n"}],
    [{"big": 2**63 - 1, "small": -(2**63), "tiny": 5e-324, "huge": 1.7976931348623157e308}],
    [{"nested": [[[{"x": [1, 2.5, True, False, None]}]]]}],
    [],
]


@pytest.mark.parametrize("value", SAID_THE_SAME)
def test_the_text_reads_back_as_what_json_dumps_wrote(value: object) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


def test_what_orjson_refuses_goes_through_json_dumps() -> None:
    past_64_bits = [{"count": 2**70}]
    assert json.loads(json_text(past_64_bits)) == past_64_bits
    lone_surrogate = [{"name": "\ud800"}]
    assert json_text(lone_surrogate) == json.dumps(lone_surrogate)
