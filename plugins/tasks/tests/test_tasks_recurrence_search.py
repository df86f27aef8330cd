"""The next occurrence is found in bounded work: dateutil's walk starts at the period that
holds the moment (not the series' start), a rare daily or weekly rule is walked a year a
period, and a series past its UNTIL is not walked at all. Same occurrences as the plain
walk from the start, which the first test compares against."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta

import pytest
from crm2_tasks.calendar import zone
from crm2_tasks.recurrence import RecurrenceError, Series, validate
from dateutil import rrule as dateutil_rrule  # type: ignore[import-untyped]

RULES = [
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=DAILY;BYHOUR=8,17;BYMINUTE=0,30",
    "FREQ=DAILY;BYMONTH=3,10;BYDAY=SU",
    "FREQ=WEEKLY;BYDAY=MO,TH",
    "FREQ=WEEKLY;INTERVAL=2",
    "FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,SU;WKST=SU",
    "FREQ=WEEKLY;BYDAY=SU;COUNT=10",
    "FREQ=WEEKLY;BYWEEKNO=53;BYDAY=TH",
    "FREQ=MONTHLY;BYMONTHDAY=31",
    "FREQ=MONTHLY;INTERVAL=5;BYDAY=-1FR",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=1,-1;UNTIL=20290101T000000Z",
    "FREQ=YEARLY",
    "FREQ=YEARLY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO",
    "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;BYSETPOS=1",
    "FREQ=DAILY;BYYEARDAY=-1,100",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;COUNT=3",
    # BYMONTH alone: every day of those months (a yearly rule would take the start's day)
    "FREQ=DAILY;BYMONTH=2,4",
    "FREQ=DAILY;BYMONTH=1,2;COUNT=40",
    # a daily or weekly INTERVAL > 1 with a date part: the yearly rule's days in a period
    "FREQ=DAILY;INTERVAL=2;BYMONTH=2,3;BYDAY=TU",
    "FREQ=DAILY;INTERVAL=5;BYDAY=MO,SA;COUNT=12",
    "FREQ=DAILY;INTERVAL=3;BYMONTH=2;BYMONTHDAY=29,1;COUNT=4",
    "FREQ=WEEKLY;INTERVAL=3;BYMONTH=1,7;BYDAY=MO,SA;WKST=SU",
    "FREQ=WEEKLY;INTERVAL=2;BYMONTHDAY=1,15;COUNT=6",
    "FREQ=DAILY;INTERVAL=40;BYDAY=MO",
    # COUNT on a daily rule without date parts: counted by arithmetic
    "FREQ=DAILY;INTERVAL=2;BYHOUR=8,20;COUNT=900",
    "FREQ=DAILY;BYHOUR=7,9,11;BYSETPOS=2,-1;COUNT=800",
]
STARTS = [
    datetime(2026, 1, 31, 8, 30, tzinfo=UTC),  # 09:30 in Berlin, a Saturday
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # 03:00 CEST, the jump
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # the second 02:30 of the fall-back night
]
LATER = [timedelta(0), timedelta(hours=5), timedelta(days=1), timedelta(days=40),
         timedelta(days=400), timedelta(days=3 * 365 + 17)]  # fmt: skip


def plain_walk(series: Series, moment: datetime) -> datetime | None:
    """The next occurrence as the plain dateutil walk from the series' start gives it."""
    local = series.start.astimezone(zone(series.timezone))
    for found in dateutil_rrule.rrulestr(series.rule, dtstart=local):
        resolved = series._utc(found)
        if resolved > moment:
            return resolved
    return None


@pytest.mark.parametrize("rule", RULES)
def test_the_bounded_search_finds_what_the_walk_from_the_start_finds(rule: str) -> None:
    for start in STARTS:
        series = validate(rule, start, "Europe/Berlin")
        for later in LATER:
            moment = start + later
            assert series.next_after(moment) == plain_walk(series, moment), (start, later)
        assert series.first() == plain_walk(series, start - timedelta(microseconds=1))


FEB_29_MONDAYS = "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"  # 2044, 2072, 2112 …
START_2044 = datetime(2044, 2, 29, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rule", "start", "moment", "expected"),
    [
        # after the last match dateutil walked on to the next day that matches: 28 years
        (f"{FEB_29_MONDAYS};COUNT=1", START_2044, START_2044, None),
        (f"{FEB_29_MONDAYS};UNTIL=20440301T000000Z", START_2044, START_2044, None),
        (FEB_29_MONDAYS, START_2044, START_2044, datetime(2072, 2, 29, 8, 0, tzinfo=UTC)),
        # long after the last match: the walk went from the start to the moment first
        (
            f"{FEB_29_MONDAYS};UNTIL=20440301T000000Z",
            START_2044,
            datetime(2400, 1, 1, tzinfo=UTC),
            None,
        ),
        # a daily series ten years on walked its 3,650 days from the start
        (
            "FREQ=DAILY",
            datetime(2026, 1, 5, 8, tzinfo=UTC),
            datetime(2036, 1, 5, 8, tzinfo=UTC),
            datetime(2036, 1, 6, 8, tzinfo=UTC),
        ),
    ],
)
def test_the_next_occurrence_takes_a_few_periods_however_rare_or_old_the_rule(
    periods: list[int], rule: str, start: datetime, moment: datetime, expected: datetime | None
) -> None:
    series = validate(rule, start, "Europe/Berlin")
    periods[0] = 0
    assert series.next_after(moment) == expected
    assert periods[0] <= 60, periods[0]


@pytest.mark.parametrize("year", [2026, 2097])
def test_a_rule_that_never_matches_is_refused_after_a_few_hundred_periods(
    periods: list[int], year: int
) -> None:
    """The probe moves the start towards 9999; near a century year that is no leap year
    (2100) the same calendar is 300 years before it (9700), 110,000 days to walk."""
    with pytest.raises(RecurrenceError, match="no occurrence within five years"):
        validate("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", datetime(year, 1, 5, tzinfo=UTC), "UTC")
    assert periods[0] <= 400, periods[0]


def test_splitting_a_rare_counted_series_counts_in_a_few_periods(periods: list[int]) -> None:
    series = validate(f"{FEB_29_MONDAYS};COUNT=3", START_2044, "Europe/Berlin")
    periods[0] = 0
    second = datetime(2072, 2, 29, 8, 0, tzinfo=UTC)
    assert series.remaining_rule(second) == f"{FEB_29_MONDAYS};COUNT=2"
    assert periods[0] <= 120, periods[0]


RARE_EVERY_OTHER_DAY = "FREQ=DAILY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU"  # 2028, 2084 …
START_2028 = datetime(2028, 2, 29, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # after its last match dateutil walked every other day to the next leap-day Tuesday
        # in phase (2084: 10,000 periods)
        (f"{RARE_EVERY_OTHER_DAY};COUNT=1", None),
        (RARE_EVERY_OTHER_DAY, datetime(2084, 2, 29, 8, 0, tzinfo=UTC)),
        ("FREQ=WEEKLY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU", None),
    ],
)
def test_a_rare_rule_with_an_interval_takes_a_few_periods(
    periods: list[int], rule: str, expected: datetime | None
) -> None:
    series = validate(rule, START_2028, "Europe/Berlin")
    periods[0] = 0
    found = series.next_after(START_2028)
    assert periods[0] <= 120, periods[0]
    assert found == plain_walk(series, START_2028)
    if expected is not None:
        assert found == expected


def test_a_rule_with_an_interval_that_never_matches_is_refused_after_a_few_hundred_periods(
    periods: list[int],
) -> None:
    """Every other day near 2100 walked 55,000 periods (0.5 s) before it was refused."""
    with pytest.raises(RecurrenceError, match="no occurrence within five years"):
        validate(
            "FREQ=DAILY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=30", datetime(2097, 1, 5, tzinfo=UTC), "UTC"
        )
    assert periods[0] <= 400, periods[0]


COUNTED = [
    ("FREQ=DAILY;COUNT=3650", datetime(2026, 1, 5, 8, tzinfo=UTC)),
    # 09:30 in Berlin: the first day has only its 17:30
    ("FREQ=DAILY;INTERVAL=3;BYHOUR=8,17;COUNT=2400", datetime(2026, 1, 31, 8, 30, tzinfo=UTC)),
    # the jump night: 02:30 is 03:00, and counts as an occurrence
    ("FREQ=DAILY;BYHOUR=2,14;BYMINUTE=30;COUNT=7000", datetime(2026, 3, 28, 13, 30, tzinfo=UTC)),
]


@pytest.mark.parametrize(("rule", "start"), COUNTED)
def test_a_counted_daily_series_late_in_life_is_not_walked_from_its_start(
    periods: list[int], rule: str, start: datetime
) -> None:
    """Completing day 3,649 of a daily COUNT=3650 walked its 3,649 days (~50-200 ms)."""
    series = validate(rule, start, "Europe/Berlin")
    walked = [series._utc(o) for o in dateutil_rrule.rrulestr(rule, dtstart=start.astimezone(
        zone("Europe/Berlin")))]  # fmt: skip
    for index in (len(walked) - 2, len(walked) - 1):
        periods[0] = 0
        expected = walked[index + 1] if index + 1 < len(walked) else None
        assert series.next_after(walked[index]) == expected, index
        assert periods[0] <= 60, periods[0]
        periods[0] = 0
        assert series.count_before(walked[index]) == index
        assert periods[0] <= 60, periods[0]


@pytest.mark.parametrize(("rule", "start"), COUNTED)
def test_the_counted_arithmetic_gives_what_the_walk_from_the_start_gives(
    rule: str, start: datetime
) -> None:
    series = validate(rule, start, "Europe/Berlin")
    local = start.astimezone(zone("Europe/Berlin"))
    walked = [series._utc(o) for o in dateutil_rrule.rrulestr(rule, dtstart=local)]
    for index in range(0, len(walked), 97):
        for moment in (walked[index], walked[index] + timedelta(hours=1)):
            after = bisect.bisect_right(walked, moment)
            assert series.next_after(moment) == (walked[after] if after < len(walked) else None)
            assert series.count_before(moment) == bisect.bisect_left(walked, moment), moment


def test_the_search_stops_at_the_year_no_occurrence_may_reach(periods: list[int]) -> None:
    """Leap-day Tuesdays every 22nd day from 2028 next match in 4000: completing one walked
    2,000 years (a year a period) for an occurrence the series may not make (2999 is
    due_at's last year); the walk stops there, and a hundred years on (``NEXT_WITHIN``)."""
    series = validate("FREQ=DAILY;INTERVAL=22;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU", START_2028, "UTC")
    assert series.next_after(START_2028) is None
    periods[0] = 0
    assert series.next_after(START_2028, before=datetime(3000, 1, 1, tzinfo=UTC)) is None
    assert periods[0] <= 130, periods[0]
    # the walk itself finds it, as dateutil does
    assert series._from(START_2028, inc=False, before=datetime(4000, 3, 1, tzinfo=UTC)) == (
        datetime(4000, 2, 29, 8, 0, tzinfo=UTC)
    )
    assert series._from(START_2028, inc=False, before=datetime(4000, 2, 29, 8, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;INTERVAL=9999999999;BYDAY=MO",
        "FREQ=WEEKLY;INTERVAL=999999999999",
        "FREQ=MONTHLY;INTERVAL=30000",
        "FREQ=YEARLY;INTERVAL=5000",
    ],
)
def test_a_huge_interval_is_one_occurrence_not_a_crash(rule: str) -> None:
    """The search went back one INTERVAL from the start: an OverflowError (a 500 on
    POST /tasks) or a year before 1. Such an INTERVAL is refused at save now; a row stored
    before is still evaluated."""
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)  # a Monday
    with pytest.raises(RecurrenceError, match="INTERVAL must be at most"):
        validate(rule, start, "Europe/Berlin")
    series = Series(rule, start, "Europe/Berlin")
    assert series.first() == start
    assert series.next_after(start) is None
    assert series.next_after(start, before=datetime(3000, 1, 1, tzinfo=UTC)) is None
    assert series.remaining_rule(start + timedelta(days=1)) == rule
