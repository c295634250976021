"""An instance's sending settings (``app.services.sending.config``): what ``parse`` refuses,
key by key; when a window is open and when it opens next, across days, time zones, daylight
saving changes and send days; and the retry delay's bounds (``backoff``)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.enums import Channel, LinkedInAction, Provider
from app.domain.limits import DAILY_LIMIT_MAX
from app.services.sending.config import DAYS, ConfigProblem, Window, parse
from app.services.sending.record import Timing, backoff

# --- parse --------------------------------------------------------------------------------------

TEXT_KEYS = ("from_email", "from_name", "message_stream", "lemlist_campaign_id")
BAD = [
    *[(key, value) for key in TEXT_KEYS for value in (5, "", "   ", ["x"], "x" * 256)],
    ("from_email", "not-an-address"),
    ("from_email", "two@@example.com"),
    ("email_provider", "phantombuster"),
    ("email_provider", "sendgrid"),
    ("email_provider", 1),
    ("linkedin_provider", "postmark"),
    ("linkedin_provider", "LEMLIST"),
    ("phantombuster_agents", ["agent-1"]),
    ("phantombuster_agents", "agent-1"),
    ("phantombuster_agents", {"follow": "agent-1"}),
    ("phantombuster_agents", {"message": ""}),
    ("phantombuster_agents", {"message": "  "}),
    ("phantombuster_agents", {"message": ["agent-1"]}),
    ("phantombuster_agents", {"message": None}),
    ("phantombuster_agents", {"message": True}),
    ("timezone", "Mars/Olympus_Mons"),
    ("timezone", "../../etc/passwd"),
    ("timezone", "Europe/Paris "),
    ("timezone", ""),
    ("timezone", 2),
    ("timezone", ["Europe/Paris"]),
    ("send_days", "mon"),
    ("send_days", []),
    ("send_days", ["funday"]),
    ("send_days", ["mon", 2]),
    ("send_days", {"mon": True}),
    ("send_from", "9:00"),
    ("send_from", "24:00"),
    ("send_from", "09:60"),
    ("send_from", "09:00:00"),
    ("send_from", 900),
    ("send_until", "5pm"),
    ("send_until", ""),
    ("daily_limit", 0),
    ("daily_limit", -1),
    ("daily_limit", DAILY_LIMIT_MAX + 1),
    ("daily_limit", 1.5),
    ("daily_limit", "10"),
    ("daily_limit", True),
]


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{k}={v!r}"[:60] for k, v in BAD])
def test_parse_refuses_a_bad_value_naming_its_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigProblem) as caught:
        parse({key: value})
    assert str(caught.value).startswith(key), str(caught.value)


def test_a_window_must_end_after_it_starts() -> None:
    for start, end in (("17:00", "09:00"), ("09:00", "09:00")):
        with pytest.raises(ConfigProblem) as caught:
            parse({"send_from": start, "send_until": end})
        assert str(caught.value).startswith("send_until")
    assert parse({"send_from": "09:00", "send_until": "09:01"}).window is not None


def test_good_values_are_read_and_unknown_keys_ignored() -> None:
    agents = {"message": "agent-1", "profile_visit": 42}
    config = parse(
        {
            "from_email": " Team@Example.com ",
            "from_name": "The Team",
            "email_provider": "lemlist",
            "linkedin_provider": "phantombuster",
            "phantombuster_agents": agents,
            "lemlist_campaign_id": "cam_1",
            "timezone": "Asia/Kolkata",
            "send_days": ["MON", "wed"],
            "send_from": "08:30",
            "send_until": "23:59",
            "daily_limit": DAILY_LIMIT_MAX,
            "theme": {"anything": "the frontend keeps"},
        }
    )
    assert config.from_email == "Team@Example.com"
    assert config.provider(Channel.EMAIL) is Provider.LEMLIST
    assert config.agents == {LinkedInAction.MESSAGE: "agent-1", LinkedInAction.PROFILE_VISIT: "42"}
    assert config.window == Window(
        zone=ZoneInfo("Asia/Kolkata"),
        days=frozenset({DAYS.index("mon"), DAYS.index("wed")}),
        start=time(8, 30),
        end=time(23, 59),
    )
    assert config.daily_limit == DAILY_LIMIT_MAX
    empty = parse({})
    assert empty.window is None
    assert empty.daily_limit is None
    assert empty.provider(Channel.EMAIL) is Provider.POSTMARK
    assert empty.provider(Channel.LINKEDIN) is Provider.PHANTOMBUSTER
    assert parse({"daily_limit": 1}).daily_limit == 1


# --- the window ---------------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = frozenset(range(5))
OFFICE = Window(zone=PARIS, days=WEEKDAYS, start=time(9), end=time(17))


def local(zone: ZoneInfo, *fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=zone, fold=fold)  # type: ignore[misc]


def test_open_inside_the_hours_on_a_send_day_and_closed_outside() -> None:
    monday = local(PARIS, 2025, 3, 3, 9)
    assert monday.weekday() == DAYS.index("mon")
    assert OFFICE.is_open(monday)
    assert OFFICE.is_open(monday.astimezone(UTC))  # the same instant, another zone
    assert OFFICE.is_open(local(PARIS, 2025, 3, 3, 16, 59, 59))
    assert not OFFICE.is_open(local(PARIS, 2025, 3, 3, 8, 59, 59))
    assert not OFFICE.is_open(local(PARIS, 2025, 3, 3, 17))  # the end is excluded
    assert not OFFICE.is_open(local(PARIS, 2025, 3, 8, 12))  # Saturday


def test_next_open_is_later_today_or_the_next_send_day() -> None:
    assert OFFICE.next_open(local(PARIS, 2025, 3, 3, 7)) == local(PARIS, 2025, 3, 3, 9)
    assert OFFICE.next_open(local(PARIS, 2025, 3, 3, 18)) == local(PARIS, 2025, 3, 4, 9)
    friday_evening = local(PARIS, 2025, 3, 7, 17)
    assert OFFICE.next_open(friday_evening) == local(PARIS, 2025, 3, 10, 9)  # Monday
    inside = local(PARIS, 2025, 3, 4, 10, 15)
    assert OFFICE.next_open(inside) == inside
    wednesdays = Window(zone=PARIS, days=frozenset({DAYS.index("wed")}), start=time(9))
    thursday = local(PARIS, 2025, 3, 6, 12)
    assert wednesdays.next_open(thursday) == local(PARIS, 2025, 3, 12, 9)
    late_wednesday = local(PARIS, 2025, 3, 12, 23, 59)
    assert wednesdays.is_open(late_wednesday)  # no end: until midnight
    assert not wednesdays.is_open(late_wednesday + timedelta(minutes=1))
    assert wednesdays.next_open(late_wednesday + timedelta(minutes=1)) == local(
        PARIS, 2025, 3, 19, 9
    )


def test_the_local_day_decides_not_the_utc_day() -> None:
    """Auckland is ahead of UTC: Monday 08:00 there is still Sunday in UTC."""
    auckland = Window(zone=ZoneInfo("Pacific/Auckland"), days=WEEKDAYS, start=time(8))
    monday_morning = local(ZoneInfo("Pacific/Auckland"), 2025, 3, 3, 8)
    assert monday_morning.astimezone(UTC).weekday() == DAYS.index("sun")
    assert auckland.is_open(monday_morning)
    assert auckland.next_open(monday_morning - timedelta(hours=1)) == monday_morning


def test_next_open_across_the_spring_change_keeps_the_local_hour() -> None:
    """Paris moves from UTC+1 to UTC+2 on Sunday 30 March 2025: Friday 09:00 was 08:00 UTC,
    Monday 09:00 is 07:00 UTC."""
    friday = local(PARIS, 2025, 3, 28, 17, 30)
    monday = OFFICE.next_open(friday)
    assert monday == local(PARIS, 2025, 3, 31, 9)
    assert monday.astimezone(UTC).hour == 7
    assert local(PARIS, 2025, 3, 28, 9).astimezone(UTC).hour == 8


def test_next_open_in_the_repeated_hour_of_the_autumn_change_is_not_in_the_past() -> None:
    """New York repeats 01:00-02:00 on Sunday 2 November 2025. A window from 01:30 opens at
    01:30 EDT, closes at 02:00 EDT when the clock goes back to 01:00 EST, and opens again at
    01:30 EST. Asked at 01:10 EST, the next opening is 01:30 EST, not 01:30 EDT (past)."""
    window = Window(zone=NEW_YORK, start=time(1, 30))
    asked = local(NEW_YORK, 2025, 11, 2, 1, 10, fold=1)
    assert not window.is_open(asked)
    opening = window.next_open(asked)
    assert opening >= asked
    # (An aware time in a repeated hour never equals one of another zone: compare in UTC.)
    assert opening.astimezone(UTC) == local(NEW_YORK, 2025, 11, 2, 1, 30, fold=1).astimezone(UTC)
    assert window.is_open(opening)


def test_a_window_inside_the_skipped_spring_hour_opens_on_a_day_that_has_it() -> None:
    """Paris skips 02:00-03:00 on Sunday 30 March 2025: a 02:00-03:00 window does not open
    that day, and the next opening is Monday's, when the window is open."""
    window = Window(zone=PARIS, start=time(2), end=time(3))
    saturday_night = local(PARIS, 2025, 3, 29, 23)
    opening = window.next_open(saturday_night)
    assert window.is_open(opening)
    assert opening == local(PARIS, 2025, 3, 31, 2)


ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Pacific/Auckland")
CHANGES = [  # (UTC days of) daylight saving changes in those zones, 2025
    datetime(2025, 3, 9, tzinfo=UTC),
    datetime(2025, 3, 30, tzinfo=UTC),
    datetime(2025, 4, 6, tzinfo=UTC),
    datetime(2025, 9, 28, tzinfo=UTC),
    datetime(2025, 10, 26, tzinfo=UTC),
    datetime(2025, 11, 2, tzinfo=UTC),
]
INSTANTS = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
) | st.builds(
    lambda change, minutes: change + timedelta(minutes=minutes),
    st.sampled_from(CHANGES),
    st.integers(-8 * 24 * 60, 2 * 24 * 60),
)


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(st.integers(0, 22))
    end = draw(st.none() | st.integers(start + 1, 23))
    return Window(
        zone=ZoneInfo(draw(st.sampled_from(ZONES))),
        days=frozenset(draw(st.sets(st.integers(0, 6), min_size=1))),
        start=time(start),
        end=None if end is None else time(end),
    )


@settings(max_examples=1000, deadline=None, database=None)
@given(window=windows(), at=INSTANTS)
def test_next_open_is_the_first_open_instant_at_or_after_now(window: Window, at: datetime) -> None:
    """Whole-hour windows in zones with and without daylight saving: the answer is never in
    the past, the window is open then, and it is closed at every quarter hour before it."""
    opening = window.next_open(at)
    assert opening >= at
    assert window.is_open(opening)
    assert opening - at <= timedelta(days=7)
    probe = opening - timedelta(minutes=15)
    while probe > at:
        assert not window.is_open(probe), (probe, opening)
        probe -= timedelta(minutes=15)
    if opening > at:
        assert not window.is_open(at)


# --- backoff ------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, database=None)
@given(
    base=st.floats(0.01, 3600),
    ratio=st.floats(1, 1000),
    attempts=st.integers(0, 100),
    retry_after=st.none() | st.floats(0, 100_000),
)
def test_backoff_is_between_half_the_doubled_delay_and_the_maximum(
    base: float, ratio: float, attempts: int, retry_after: float | None
) -> None:
    timing = Timing(base_s=base, max_s=base * ratio, max_attempts=100)
    ceiling = min(timing.max_s, base * 2 ** max(attempts - 1, 0))
    delay = backoff(attempts, timing, retry_after)
    assert delay >= (retry_after or 0.0), "never sooner than the provider asked"
    assert delay >= ceiling / 2
    if retry_after is None or retry_after <= timing.max_s:
        assert delay <= timing.max_s
        assert delay <= max(ceiling, retry_after or 0.0)
    else:
        assert delay == retry_after  # the provider's word wins over our maximum


def test_backoff_doubles_then_stays_under_the_maximum_with_jitter() -> None:
    timing = Timing(base_s=1.0, max_s=300.0, max_attempts=8)
    for attempts in range(1, 12):
        ceiling = min(300.0, 2.0 ** (attempts - 1))
        delays = [backoff(attempts, timing) for _ in range(200)]
        assert min(delays) >= ceiling / 2
        assert max(delays) <= ceiling
        assert len(set(delays)) > 100, "jittered: a crowd refused together spreads out"
    assert backoff(3, timing, retry_after=250.0) >= 250.0
