"""RFC 5545 rules: wall time kept across DST, COUNT / UNTIL, splitting a series."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from crm2_tasks.recurrence import RecurrenceError, Series, validate

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def test_weekly_occurrences_keep_the_local_time_across_the_dst_change() -> None:
    series = validate("FREQ=WEEKLY;BYDAY=MO", berlin(2026, 3, 23, 9), "Europe/Berlin")
    nxt = series.next_after(berlin(2026, 3, 23, 9))
    assert nxt == berlin(2026, 3, 30, 9)
    assert nxt is not None and nxt.astimezone(UTC).hour == 7  # was 08:00 UTC a week before
    assert nxt.tzinfo == UTC


def test_count_ends_the_series() -> None:
    series = validate("FREQ=DAILY;COUNT=2", berlin(2026, 5, 4, 9), "Europe/Berlin")
    assert series.next_after(berlin(2026, 5, 4, 9)) == berlin(2026, 5, 5, 9)
    assert series.next_after(berlin(2026, 5, 5, 9)) is None


def test_until_ends_the_series() -> None:
    series = validate("FREQ=DAILY;UNTIL=20260505T235959Z", berlin(2026, 5, 4, 9), "Europe/Berlin")
    assert series.next_after(berlin(2026, 5, 5, 9)) is None


def test_monthly_on_the_last_working_day() -> None:
    series = validate(
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", berlin(2026, 1, 30, 16), "Europe/Berlin"
    )
    assert series.next_after(berlin(2026, 1, 30, 16)) == berlin(2026, 2, 27, 16)


def test_a_split_ends_the_old_rule_and_carries_the_remaining_count() -> None:
    series = Series("FREQ=DAILY;COUNT=5", berlin(2026, 5, 4, 9), "Europe/Berlin")
    third = berlin(2026, 5, 6, 9)
    assert series.ended_before(third) == "FREQ=DAILY;UNTIL=20260506T065959Z"
    assert series.remaining_rule(third) == "FREQ=DAILY;COUNT=3"
    old = Series(series.ended_before(third), series.start, series.timezone)
    assert old.next_after(berlin(2026, 5, 5, 9)) is None


def test_rrule_prefix_and_lower_case_are_accepted() -> None:
    assert validate("rrule:freq=daily", berlin(2026, 5, 4, 9), "UTC").rule == "FREQ=DAILY"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("FREQ=MINUTELY", "FREQ must be one of"),
        ("FREQ=DAILY;DTSTART=20260101T000000Z", "leave DTSTART out"),
        ("FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z", "COUNT or UNTIL"),
        ("FREQ=DAILY;UNTIL=20270101", "UNTIL must be a UTC time"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "no occurrence"),
        ("FREQ=WEEKLY;BYDAY=XX", "FREQ=WEEKLY;BYDAY=XX"),
        ("FREQ=DAILY\nRRULE:FREQ=WEEKLY", "is not an RRULE"),
        ("", "is not an RRULE"),
        ("FREQ=DAILY;" + "BYHOUR=1;" * 100, "is not an RRULE"),
        # dateutil never steps past the start with INTERVAL=0: the next occurrence hung
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be at least 1"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be at least 1"),
        ("FREQ=DAILY;UNTIL=20260101T000000Z", "no occurrence"),  # ends before the start
        # dateutil's Easter extension: an IndexError (a 500) far from Easter
        ("FREQ=YEARLY;BYEASTER=99999", "BYEASTER is not part of RFC 5545"),
        ("FREQ=DAILY;INTERVAL=1;INTERVAL=2", "each part of the rule once"),
        ("FREQ=MONTHLY;BYDAY=+60MO", "names a day no month or year has"),  # an IndexError
        ("FREQ=DAILY;UNTIL=20260601T000000Z;UNTIL=20270101T000000Z", "each part of the rule once"),
        # every minute: a job, not a task
        ("FREQ=DAILY;BYMINUTE=" + ",".join(map(str, range(60))), "60 times a day"),
        ("FREQ=DAILY;BYHOUR=9,10,11,12,13;BYMINUTE=0,15,30,45,50", "25 times a day"),
    ],
)
def test_unusable_rules_are_refused(rule: str, message: str) -> None:
    with pytest.raises(RecurrenceError, match=message):
        validate(rule, berlin(2026, 5, 4, 9), "Europe/Berlin")


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(RecurrenceError, match="unknown time zone"):
        validate("FREQ=DAILY", berlin(2026, 5, 4, 9), "Nowhere/City")


def test_a_stored_rule_with_interval_0_ends_its_series_instead_of_hanging() -> None:
    """A row saved before INTERVAL=0 was refused: completing its occurrence must not spin."""
    signal.signal(signal.SIGALRM, _hung)
    signal.alarm(5)
    try:
        series = Series("FREQ=DAILY;INTERVAL=0", berlin(2026, 5, 4, 9), "Europe/Berlin")
        assert series.next_after(berlin(2026, 5, 4, 9)) is None
    finally:
        signal.alarm(0)


def _hung(*_args: object) -> None:
    raise TimeoutError("the next occurrence did not come within 5 seconds")


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",  # dateutil walked every day until 9999: ~30 s
        "FREQ=DAILY;BYMONTHDAY=31;BYMONTH=2,4,6,9,11",
        "FREQ=WEEKLY;BYYEARDAY=1;BYMONTH=6",
        "FREQ=MONTHLY;BYDAY=+5MO;BYMONTHDAY=1",
    ],
)
def test_a_rule_that_never_matches_is_refused_at_once(rule: str) -> None:
    signal.signal(signal.SIGALRM, _hung)
    signal.alarm(3)
    try:
        with pytest.raises(RecurrenceError, match="no occurrence"):
            validate(rule, berlin(2026, 5, 4, 9), "Europe/Berlin")
    finally:
        signal.alarm(0)


@pytest.mark.parametrize(
    ("rule", "start", "first"),
    [
        # the probe runs on the same calendar moved towards 9999: leap days, weekdays and
        # week numbers must still fall as they do from the real start
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29", (2026, 5, 4, 9), (2028, 2, 29, 9)),
        ("FREQ=YEARLY;BYWEEKNO=53;BYDAY=MO", (2026, 5, 4, 9), (2026, 12, 28, 9)),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU", (2026, 5, 4, 9), (2028, 2, 29, 9)),
        ("FREQ=MONTHLY;BYMONTHDAY=13;BYDAY=FR", (2099, 1, 1, 9), (2099, 2, 13, 9)),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", (2099, 3, 1, 9), (2104, 2, 29, 9)),  # 2100
    ],
)
def test_a_rule_that_matches_late_in_the_window_is_kept(
    rule: str, start: tuple[int, ...], first: tuple[int, ...]
) -> None:
    series = validate(rule, berlin(*start), "Europe/Berlin")
    assert series.next_after(berlin(*start)) == berlin(*first)
