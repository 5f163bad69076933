"""``parse_json`` skips the per-string NUL and surrogate checks when the body's bytes show no
string can hold either (``texts_are_clean``). Whatever a body holds, the answer must be the
same as checking every string: the same value, or the same first fault at the same place."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from orchestrator.errors import InvalidJson
from orchestrator.guards import strict_json
from orchestrator.guards.strict_json import MAX_JSON_DEPTH, parse_json, texts_are_clean

# Every way json.loads can produce a NUL or a lone surrogate from a UTF-8 body, and the
# encodings it detects by itself.
UNCLEAN = [
    b'{"a": "x\\u0000"}',
    b'{"a\\u0000": 1}',
    b'["\\ud800"]',
    b'["\\uDBFF"]',
    b'["\\udc00x"]',
    b'["\\uDFFF"]',
    b'["\\ud83d\\ude00"]',  # a valid pair: still "not clean", so checked string by string
    b'["\xed\xa0\x80"]',  # a surrogate's UTF-8-like bytes (json decodes with surrogatepass)
    b'{"k\xed\xbf\xbf": 1}',
    '{"a": "\\u0000"}'.encode("utf-16"),
    '{"a": "\\u0000"}'.encode("utf-16-le"),
    '{"a": "\\u0000"}'.encode("utf-32-be"),
    b"\xff\xfe{\x00}\x00",
]


@pytest.mark.parametrize("body", UNCLEAN)
def test_a_body_that_can_hold_a_nul_or_a_surrogate_is_checked_string_by_string(
    body: bytes,
) -> None:
    assert not texts_are_clean(body)


def test_a_plain_batch_is_clean() -> None:
    events = [{"external_id": f"c{n}", "name": "login", "id": f"e-{n}"} for n in range(100)]
    body = json.dumps({"events": events, "note": "café 東京"}, ensure_ascii=False).encode()
    assert texts_are_clean(body)


def _outcome(body: bytes) -> Any:
    try:
        return ("ok", parse_json(body))
    except InvalidJson as exc:
        return ("refused", exc.errors)


SCALARS: list[Any] = [
    "plain",
    "café",
    "한국어",  # Hangul: its UTF-8 begins with ED
    "a\x00b",
    "\ud800",
    "x\udfff",
    "😀",
    "",
    0,
    -1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    1.5,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
    None,
]


def _random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 36 or roll < 0.5:
        return rng.choice(SCALARS)
    if roll < 0.75:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = [rng.choice(SCALARS[:8]) + str(n) for n in range(rng.randint(0, 4))]
    return {key: _random_value(rng, depth + 1) for key in keys}


def _encode(value: Any, rng: random.Random) -> bytes:
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("seed", range(40))
def test_the_scan_never_changes_the_answer(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    bodies = []
    for _ in range(150):
        value = _random_value(rng, 1)
        if rng.random() < 0.2:  # deep, to cross MAX_JSON_DEPTH with or without poison
            for _level in range(rng.randint(25, 40)):
                value = [value] if rng.random() < 0.5 else {"k": value}
        bodies.append(_encode(value, rng))
    scanned = [_outcome(body) for body in bodies]
    monkeypatch.setattr(strict_json, "texts_are_clean", lambda _body: False)
    checked = [_outcome(body) for body in bodies]

    assert scanned == checked
    assert any(o[0] == "ok" for o in checked) and any(o[0] == "refused" for o in checked)


@pytest.mark.parametrize(
    "value",
    [
        {"score": float("nan")},
        {"score": float("inf")},
        {"n": 2**64},
        {"s": "a\x00b"},
        {"s": "\ud800"},
        {"\ud800": 1},
        {"deep": json.loads("[" * 40 + "]" * 40)},
        {"fine": [1, "two", {"three": 3.0, "four": None, "five": True}]},
    ],
)
def test_a_value_made_in_python_is_judged_as_its_json_would_be(value: Any) -> None:
    """``check_storable`` (command-line properties) refuses what ``parse_json`` refuses in a
    body holding the same value, at the same place, and lets through what it lets through."""
    body = json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    expected: list[Any] | None = None
    try:
        parse_json(body, ())
    except InvalidJson as exc:
        expected = exc.errors
    try:
        strict_json.check_storable(value)
    except InvalidJson as exc:
        assert exc.errors == expected
    else:
        assert expected is None


@pytest.mark.parametrize("levels", [40, 3_000])
def test_too_deep_is_named_at_the_same_place_however_deep(levels: int) -> None:
    """Past ~1,000 levels json.loads gives up before any value exists; the place is then read
    from the body's tokens, and is the one a shallower body is named at: keys holding
    brackets, colons, commas and escaped quotes do not move it."""
    head = b'{"a[": 1, "b\\":{,": [1, "]", {"c": '
    body = head + b"[" * levels + b"]" * levels + b"}]}"
    with pytest.raises(InvalidJson) as raised:
        parse_json(body)
    [error] = raised.value.errors
    assert error["type"] == "json_too_deep"
    assert error["loc"] == ["body", 'b":{,', 2, "c", *[0] * (MAX_JSON_DEPTH - 3)]
