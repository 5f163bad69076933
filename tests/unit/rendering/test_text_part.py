"""A layout's text is converted once and filled with each mail's values; it is learnt on its
second sighting, only when it gives back the converted text, and a bounded number is kept."""

from __future__ import annotations

import pytest

import orchestrator.rendering.text_part as text_part
from orchestrator.rendering.slots import CLOSE, OPEN, Marks, cut
from orchestrator.rendering.text_part import LayoutTexts, _LayoutText, _read, opaque, plain_text


def text_of(texts: LayoutTexts, marked: str) -> str:
    marks = Marks()
    marks.written = marked.count(OPEN)
    pieces = cut(marked, marks)
    assert pieces is not None
    return texts.text("".join(pieces), pieces)


def unmarked(marked: str) -> str:
    return marked.replace(OPEN, "").replace(CLOSE, "")


def mail(name: str, url: str, step: str = "welcome") -> str:
    return (
        f"<html><head><title>{step}</title></head><body>"
        f"<p>Hello {OPEN}{name}{CLOSE},</p><p>This is the {step} mail.</p>"
        f'<a href="{OPEN}{url}{CLOSE}">Start</a>'
        f'<ul><li>{OPEN}{name}{CLOSE}</li></ul><img alt="{OPEN}{name}{CLOSE}" src="x">'
        "</body></html>"
    )


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    converted: list[str] = []

    def counted(html: str) -> str:
        converted.append(html)
        return plain_text(html)

    monkeypatch.setattr(text_part, "plain_text", counted)
    return converted


def test_a_layout_is_converted_until_its_second_mail_then_filled(
    conversions: list[str],
) -> None:
    texts = LayoutTexts()
    mails = [
        mail("Ann", "https://x.example/a?u=1&amp;v=2"),
        mail("O&#39;Brien &amp; &lt;Sons&gt;", "https://x.example/b"),
        mail("山田 太郎", "https://x.example/c"),
        mail("Zoë", "https://x.example/d"),
    ]

    made = [text_of(texts, marked) for marked in mails]

    assert made == [plain_text(unmarked(marked)) for marked in mails]
    assert len(conversions) == 3  # the first mail; the second, and its layout learnt
    assert "Hello O'Brien & <Sons>," in made[1]
    assert "Start (https://x.example/c)" in made[2]  # the link's address after its text


def test_another_layout_is_another_text(conversions: list[str]) -> None:
    texts = LayoutTexts()
    for step in ("welcome", "welcome", "faq", "faq", "welcome", "faq"):
        marked = mail("Ann", "https://x.example/a", step)
        assert text_of(texts, marked) == plain_text(unmarked(marked))
    assert len(conversions) == 6  # 1 + 2 for each layout, none for the last two


def test_layouts_of_one_shape_are_told_apart(conversions: list[str]) -> None:
    """Two layouts with as many pieces and as many characters (a known layout is looked up
    first by that shape, then compared piece by piece) each get their own text."""
    texts = LayoutTexts()
    steps = ("alpha", "alpha", "omega", "omega", "alpha", "omega", "omega", "alpha")
    for step in steps:
        marked = mail("Ann", "https://x.example/a", step)
        assert text_of(texts, marked) == plain_text(unmarked(marked))
    assert len(conversions) == 6  # 1 + 2 for each layout (as above), none for the last four


class _CountedGets(dict[str, object]):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, key: str, default: object = None) -> object:
        self.gets += 1
        return super().get(key, default)


def test_a_layout_met_again_is_known_without_joining_its_pieces() -> None:
    """Once found, a layout is known again by its pieces alone: the layouts' table, keyed by
    the joined layout, is not asked again while mails of that layout follow."""
    texts = LayoutTexts()
    table = _CountedGets()
    texts._texts = table  # type: ignore[assignment]
    names = ("Ann", "Bo", "Cy", "Di", "Ed", "Flo")
    for name in names:
        marked = mail(name, "https://x.example/a")
        assert text_of(texts, marked) == plain_text(unmarked(marked))
    assert table.gets == 3  # the first two mails (not yet learnt), the third (found there)


def test_layouts_of_one_shape_sent_in_turn_are_each_known_by_their_pieces() -> None:
    """Layouts that share a shape and alternate do not push each other out of the lookup by
    shape: once each is found, neither is looked up by its joined layout again."""
    texts = LayoutTexts()
    table = _CountedGets()
    texts._texts = table  # type: ignore[assignment]
    steps = ("alpha", "omega", "sigma")  # three layouts, one shape
    for step in steps * 3:  # the third round finds all three in the table
        marked = mail("Ann", "https://x.example/a", step)
        assert text_of(texts, marked) == plain_text(unmarked(marked))
    gets = table.gets
    for name in ("Bo", "Cy", "Di", "Ed"):
        for step in steps:
            marked = mail(name, "https://x.example/a", step)
            assert text_of(texts, marked) == plain_text(unmarked(marked))
    assert table.gets == gets


def test_only_so_many_layouts_of_one_shape_are_kept_by_their_shape() -> None:
    texts = LayoutTexts()
    steps = ("alpha", "omega", "sigma", "delta", "kappa", "gamma")  # six of one shape
    for step in steps * 3:
        marked = mail("Ann", "https://x.example/a", step)
        assert text_of(texts, marked) == plain_text(unmarked(marked))
    (entries,) = texts._by_shape.values()
    assert len(entries) == text_part._LAYOUTS_A_SHAPE


def test_a_mail_without_marks_is_converted(conversions: list[str]) -> None:
    texts = LayoutTexts()
    html = unmarked(mail("Ann", "https://x.example/a"))
    assert [texts.text(html, None) for _ in range(3)] == [plain_text(html)] * 3
    assert len(conversions) == 3


def test_a_layout_whose_filled_text_differs_is_never_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Were the converter to change a value (here: every word upper-cased), the learnt text
    would not give back the converted one, and each mail goes on being converted."""
    monkeypatch.setattr(text_part, "plain_text", lambda html: plain_text(html).upper())
    texts = LayoutTexts()

    mails = [mail(name, "https://x.example/a") for name in ("Ann", "Bo", "Cy", "Di")]

    made = [text_of(texts, marked) for marked in mails]

    assert made == [plain_text(unmarked(marked)).upper() for marked in mails]
    assert "HELLO DI," in made[3]


def test_only_so_many_layouts_are_kept() -> None:
    texts = LayoutTexts(layouts=2)
    for step in ("a", "b", "c", "d"):
        for _ in range(2):
            marked = mail("Ann", "https://x.example/a", step)
            text_of(texts, marked)
    assert len(texts._texts) == 2


@pytest.mark.parametrize(
    "value", ["Ann", "山田 太郎", "O'Brien & <Sons>", "https://x.example/?a=1&b=2", "Zoë"]
)
def test_a_word_like_value_is_opaque(value: str) -> None:
    assert opaque(value)


@pytest.mark.parametrize(
    "value",
    ["", " Ann", "Ann ", "Ann  Lee", "Ann\nLee", "Ann\tLee", "Ann\u00a0Lee", "Ann\u200bLee"],
)
def test_a_value_the_converter_might_change_is_not(value: str) -> None:
    assert not opaque(value)


def test_a_mail_with_a_value_that_is_not_opaque_is_converted(conversions: list[str]) -> None:
    """Its layout is known, but the converter would fold its spaces: it is converted, and
    the layout is not learnt from it."""
    texts = LayoutTexts()
    names = ["Ann", "Bo", "Cy  Lee", "Di\nEd", "Fay"]

    made = [text_of(texts, mail(name, "https://x.example/a")) for name in names]

    assert made == [plain_text(unmarked(mail(name, "https://x.example/a"))) for name in names]
    assert "Hello Cy Lee," in made[2] and "Hello Di Ed," in made[3]
    assert len(conversions) == 5  # Ann; Bo and its layout; Cy; Di; none for Fay


_FILL_VALUES = [
    "Ann",
    "山田 太郎",
    "O&#39;Brien &amp; &lt;Sons&gt;",
    "https://x.example/?a=1&amp;b=2",
    "",
    " Ann",
    "Ann ",
    "Ann  Lee",
    "Ann\nLee",
    "Ann&#10;Lee",
    "&nbsp;Ann",
    "Ann&#x200b;Lee",
    "&amp;",
    "&",
    "&amp",
    "Ann\u00a0Lee",
]


@pytest.mark.parametrize("value", _FILL_VALUES, ids=repr)
def test_a_layout_fills_a_value_exactly_when_it_is_opaque_as_read(value: str) -> None:
    """``fill`` writes ``_read`` and ``opaque`` out inline: the copies agree."""
    layout = _LayoutText("Hello ", ((0, ", bye "), (1, ".")))
    filled = layout.fill(["Bo", value])
    read = _read(value)
    if opaque(read):
        assert filled == f"Hello Bo, bye {read}."
    else:
        assert filled is None
