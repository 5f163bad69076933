"""The sender a mail names, per language: the local name, address and contact where one is
set, the default's elsewhere; made once per language and the same every time after."""

from __future__ import annotations

from orchestrator.rendering.context import SenderIdentity

SENDER = SenderIdentity(
    "Stepmail",
    "hello@example.com",
    "1 Main St",
    "help@example.com",
    local=(("ja", "ステップメール", "東京都千代田区1-1", None), ("en", None, None, None)),
)


def test_each_language_names_its_local_sender_where_one_is_set() -> None:
    ja = SENDER.for_language("ja")
    assert (ja.name, ja.postal_address, ja.contact) == (
        "ステップメール",
        "東京都千代田区1-1",
        "help@example.com",  # no local contact: the default's
    )
    assert ja.local == ()
    en = SENDER.for_language("en")
    assert (en.name, en.postal_address, en.contact) == ("Stepmail", "1 Main St", "help@example.com")
    assert SENDER.for_language("fr") is SENDER  # no local identity at all


def test_each_language_is_made_once_and_equality_ignores_what_was_remembered() -> None:
    fresh = SenderIdentity(
        SENDER.name, SENDER.email, SENDER.postal_address, SENDER.contact, local=SENDER.local
    )
    first = SENDER.for_language("ja")
    assert SENDER.for_language("ja") is first
    assert fresh == SENDER and hash(fresh) == hash(SENDER)  # SENDER has remembered ja, fresh not
    assert fresh.for_language("ja") == first
