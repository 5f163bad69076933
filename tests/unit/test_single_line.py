"""``single_line`` returns one-line values as they are without its two regex passes; that
short way gives exactly what the passes give, for every character."""

from __future__ import annotations

import random
import sys

from orchestrator.guards import mail_headers
from orchestrator.guards.mail_headers import single_line


def by_the_passes(value: str) -> str:
    return mail_headers._WHITESPACE.sub(" ", mail_headers._UNSAFE.sub(" ", value)).strip()


def test_no_printable_character_but_the_space_is_unsafe_or_whitespace() -> None:
    """What the short way rests on: ``str.isprintable`` excludes every character the passes
    replace, bar the space itself."""
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        if character.isprintable() and character != " ":
            assert not mail_headers._UNSAFE.match(character), hex(code)
            assert not mail_headers._WHITESPACE.match(character), hex(code)


def test_the_short_way_gives_what_the_passes_give() -> None:
    pieces = [
        "a",
        "東",
        " ",
        "  ",
        "\t",
        "\r\n",
        "\x00",
        "\x85",
        "\u00a0",
        "\u2028",
        "\u3000",
        "\u202e",
        "\ud800",
        "=?utf-8?q?x?=",
        "😀",
        "",
    ]
    rng = random.Random(7)
    values = ["", " ", "a", " a", "a ", "a  b", "a b", "Relay 株式会社"]
    values += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))) for _ in range(5000)]
    for value in values:
        assert single_line(value) == by_the_passes(value), repr(value)


def test_a_one_line_value_comes_back_as_the_same_object() -> None:
    value = "Welcome to Relay, 東都ロジスティクス株式会社: let's plan your rollout"
    assert single_line(value) is value
