"""The sessions a batch of mails lists, worked out once per reader's tier, language and time
zone (:class:`SessionsAt`): the same views as working each out on its own."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.journeys.programs import Programs, SessionsAt, session_view

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PROGRAMS = Programs.model_validate(
    {
        "programs": [
            {
                "id": f"session-{n}",
                "kind": "webinar" if n % 2 else "group_session",
                "title": {"ja": f"説明会 {n}", "en": f"Session {n}"},
                "starts_at": f"2026-11-{n + 1:02d}T06:00:00+00:00",  # session-0 has begun
                "timezone": "Asia/Tokyo",
                "capacity": 10,
                "registration_url": f"https://relay.example/sessions/{n}",
                "tiers": ["low", "high"] if n == 3 else ["low"],
                "languages": ["ja"] if n == 4 else ["ja", "en"],
            }
            for n in range(6)
        ]
    }
)
READERS = [
    (tier, language, timezone)
    for tier in ("low", "high", "tech")
    for language in ("ja", "en")
    for timezone in ("Asia/Tokyo", "America/New_York", "Europe/London")
]


def test_each_reader_sees_what_working_it_out_alone_gives() -> None:
    sessions = SessionsAt(PROGRAMS, NOW)
    for _ in range(2):  # the second round comes from what the first worked out
        for tier, language, timezone in READERS:
            alone = [
                session_view(program, language, timezone, "")
                for program in PROGRAMS.upcoming(NOW, tier, language)
            ]
            shown = sessions.shown(tier, language, timezone)
            assert [view for _, view in shown] == alone
            assert [program.id for program, _ in shown] == [view["id"] for view in alone]


def test_what_is_shown_follows_tier_language_and_moment() -> None:
    sessions = SessionsAt(PROGRAMS, NOW)
    assert [p.id for p, _ in sessions.shown("low", "ja", "Asia/Tokyo")] == [
        "session-1",
        "session-2",
        "session-3",
    ]
    assert [p.id for p, _ in sessions.shown("high", "en", "Asia/Tokyo")] == ["session-3"]
    assert sessions.shown("tech", "ja", "Asia/Tokyo") == []
    later = SessionsAt(PROGRAMS, datetime(2026, 11, 4, 9, 0, tzinfo=UTC))
    assert [p.id for p, _ in later.shown("low", "ja", "Asia/Tokyo")] == ["session-4", "session-5"]


def test_a_view_is_made_once_per_session_language_and_time_zone() -> None:
    sessions = SessionsAt(PROGRAMS, NOW)
    first = sessions.shown("low", "en", "America/New_York")
    again = sessions.shown("low", "en", "America/New_York")
    assert all(a[1] is b[1] for a, b in zip(first, again, strict=True))
    tokyo = sessions.shown("low", "en", "Asia/Tokyo")
    assert first[0][1]["starts"] != tokyo[0][1]["starts"]  # another local time
