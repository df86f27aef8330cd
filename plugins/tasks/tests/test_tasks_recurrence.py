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
