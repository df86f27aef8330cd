"""Business-calendar arithmetic: weekends, holidays and both DST changes of Europe/Berlin.

In 2026 Berlin goes to summer time on Sunday 29 March (02:00 → 03:00) and
back on Sunday 25 October (03:00 → 02:00).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from crm2_tasks.calendar import BusinessCalendar, CalendarError
from hypothesis import given, settings
from hypothesis import strategies as st

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def office(holidays: tuple[str, ...] = ("2026-04-03", "2026-12-25")) -> BusinessCalendar:
    """Mon-Fri 09:00-12:30 and 13:30-17:00 in Berlin; Good Friday and Christmas off."""
    hours = {d: [["09:00", "12:30"], ["13:30", "17:00"]] for d in WEEKDAYS}
    return BusinessCalendar.from_spec("Europe/Berlin", hours, holidays)


def nine_to_five() -> BusinessCalendar:
    return BusinessCalendar.from_spec(
        "Europe/Berlin", {d: [["09:00", "17:00"]] for d in WEEKDAYS}, ["2026-04-03"]
    )


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def test_hours_carry_over_a_weekend_that_contains_the_spring_dst_change() -> None:
    cal = nine_to_five()
    due = cal.add(berlin(2026, 3, 27, 16), timedelta(hours=2))  # Friday 16:00 CET
    assert due == berlin(2026, 3, 30, 10)  # Monday 10:00 CEST
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 8, tzinfo=UTC)


def test_hours_carry_over_the_autumn_dst_weekend() -> None:
    cal = nine_to_five()
    due = cal.add(berlin(2026, 10, 23, 16, 30), timedelta(hours=1))  # Friday CEST
    assert due == berlin(2026, 10, 26, 9, 30)  # Monday CET
    assert due.astimezone(UTC) == datetime(2026, 10, 26, 8, 30, tzinfo=UTC)


def test_a_holiday_is_skipped() -> None:
    cal = nine_to_five()
    # Thursday before Good Friday, 16:00 + 3 h: 1 h on Thursday, Friday off, 2 h Monday
    assert cal.add(berlin(2026, 4, 2, 16), timedelta(hours=3)) == berlin(2026, 4, 6, 11)


def test_business_days_skip_a_holiday_and_keep_the_wall_time_across_dst() -> None:
    cal = nine_to_five()
    # Thursday 26 March 15:00 CET + 1 business day = Friday; + 2 = Monday 15:00 CEST
    assert cal.add_days(berlin(2026, 3, 26, 15), 2) == berlin(2026, 3, 30, 15)
    assert cal.add_days(berlin(2026, 4, 2, 15), 1) == berlin(2026, 4, 6, 15)


def test_business_days_from_outside_hours_count_from_the_next_opening() -> None:
    cal = nine_to_five()
    assert cal.add_days(berlin(2026, 3, 28, 10), 1) == berlin(2026, 3, 31, 9)  # Saturday
    assert cal.add_days(berlin(2026, 3, 27, 18), 0) == berlin(2026, 3, 30, 9)  # Friday night


def test_an_amount_that_ends_at_closing_time_is_due_at_closing_time() -> None:
    cal = office()
    assert cal.add(berlin(2026, 3, 23, 13, 30), timedelta(hours=3, minutes=30)) == berlin(
        2026, 3, 23, 17
    )


def test_lunch_break_is_not_working_time() -> None:
    cal = office()
    assert cal.add(berlin(2026, 3, 23, 12), timedelta(hours=1)) == berlin(2026, 3, 23, 14)
    assert cal.between(berlin(2026, 3, 23, 12), berlin(2026, 3, 23, 14)) == timedelta(hours=1)


def test_dst_days_have_23_and_25_real_hours_on_a_round_the_clock_calendar() -> None:
    cal = BusinessCalendar.from_spec("Europe/Berlin", {"sun": [["00:00", "24:00"]]})
    spring = cal.between(berlin(2026, 3, 29, 0), berlin(2026, 3, 30, 0))
    autumn = cal.between(berlin(2026, 10, 25, 0), berlin(2026, 10, 26, 0))
    assert (spring, autumn) == (timedelta(hours=23), timedelta(hours=25))


def test_an_interval_inside_the_spring_gap_has_no_working_time() -> None:
    cal = BusinessCalendar.from_spec(
        "Europe/Berlin", {"sun": [["02:00", "03:00"]], "mon": [["09:00", "10:00"]]}
    )
    assert cal.day_intervals(date(2026, 3, 29)) == []
    assert cal.add(berlin(2026, 3, 29, 0), timedelta(minutes=30)) == berlin(2026, 3, 30, 9, 30)


def test_hours_that_start_or_end_inside_the_spring_gap_begin_or_end_at_the_jump() -> None:
    """On 29 March the clocks go 02:00 → 03:00: "from 02:30" starts when the clock first
    reads 02:30 or later (03:00 summer time), "until 02:30" ends then too; 02:30 read
    with winter time (03:30 summer time) gave a night shift half an hour too much and
    an early shift half an hour too little."""
    jump = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:00 CET = 03:00 CEST
    night = BusinessCalendar.from_spec("Europe/Berlin", {"sun": [["00:00", "02:30"]]})
    assert night.day_intervals(date(2026, 3, 29)) == [(berlin(2026, 3, 29, 0), jump)]
    early = BusinessCalendar.from_spec("Europe/Berlin", {"sun": [["02:30", "06:00"]]})
    assert early.day_intervals(date(2026, 3, 29)) == [(jump, berlin(2026, 3, 29, 6))]
    assert early.between(berlin(2026, 3, 29, 0), berlin(2026, 3, 30, 0)) == timedelta(hours=3)
    # a zone whose midnight is skipped (Santiago: 00:00 → 01:00 on 6 September 2026)
    santiago = BusinessCalendar.from_spec("America/Santiago", {"sun": [["00:00", "08:00"]]})
    assert santiago.day_intervals(date(2026, 9, 6)) == [
        (datetime(2026, 9, 6, 4, 0, tzinfo=UTC), datetime(2026, 9, 6, 11, 0, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"mon": [["17:00", "09:00"]]}, "must end after it starts"),
        ({"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}, "overlap"),
        ({"mon": [["9:00", "17:00"]]}, "HH:MM"),
        ({"mon": [["0\u00b2:00", "17:00"]]}, "HH:MM"),  # "²" passes str.isdigit(), not int()
        ({"mon": [["09:00", "25:00"]]}, "not a time of day"),
        ({"someday": [["09:00", "17:00"]]}, "not a weekday"),
        ({}, "at least one weekday"),
    ],
)
def test_unusable_calendars_are_refused(hours: dict[str, list[list[str]]], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar.from_spec("Europe/Berlin", hours)


def test_unknown_zone_and_naive_times_are_refused() -> None:
    with pytest.raises(CalendarError, match="unknown time zone"):
        BusinessCalendar.standard("Mars/Olympus_Mons")
    with pytest.raises(CalendarError, match="naive"):
        nine_to_five().add(datetime(2026, 3, 23, 9), timedelta(hours=1))


def test_a_calendar_of_holidays_only_gives_up_instead_of_looping() -> None:
    every_day = [(date(2026, 1, 1) + timedelta(days=i)).isoformat() for i in range(3700)]
    cal = BusinessCalendar.from_spec("UTC", {"mon": [["09:00", "17:00"]]}, every_day)
    with pytest.raises(CalendarError, match="no working time"):
        cal.add(datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=1))


# -- properties over the whole of 2026 (both DST changes, holidays, lunch breaks) -----

instants = st.integers(min_value=0, max_value=365 * 24 * 60 - 1).map(
    lambda m: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=m)
)
amounts = st.integers(min_value=1, max_value=300 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=120, deadline=None)
@given(start=instants, amount=amounts)
def test_adding_then_measuring_gives_back_the_amount(start: datetime, amount: timedelta) -> None:
    cal = office()
    due = cal.add(start, amount)
    assert cal.between(start, due) == amount
    # it ends inside working time, never in a gap after it
    assert cal.is_working(due - timedelta(microseconds=1))


@settings(max_examples=80, deadline=None)
@given(start=instants, first=amounts, second=amounts)
def test_adding_in_two_steps_is_adding_once(
    start: datetime, first: timedelta, second: timedelta
) -> None:
    cal = office()
    assert cal.add(cal.add(start, first), second) == cal.add(start, first + second)


@settings(max_examples=80, deadline=None)
@given(start=instants, days=st.integers(min_value=1, max_value=30))
def test_business_days_land_on_working_days_in_order(start: datetime, days: int) -> None:
    cal = office()
    due = cal.add_days(start, days)
    assert due > start
    local_day = due.astimezone(BERLIN).date()
    assert cal.day_intervals(local_day), f"{due} is not on a working day"
    assert cal.add_days(start, days + 1) > due
