"""Limits that keep each recurrence computation to tens of milliseconds: INTERVAL per FREQ
and COUNT are bounded at save (422 naming the part), the next occurrence is searched at
most ``NEXT_WITHIN`` (a hundred years) on, and a COUNT rule walked from its start is walked
once. The worst cases' times are printed (``-s``) as figures, the assertions are on the
periods dateutil builds and on the answers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm2_tasks.calendar import zone
from crm2_tasks.recurrence import MAX_COUNT, MAX_INTERVAL, RecurrenceError, Series, validate
from dateutil import rrule as dateutil_rrule  # type: ignore[import-untyped]
from tasks_kit import API, Tasks

LATEST_DUE = datetime(3000, 1, 1, tzinfo=UTC)
HOURS = ",".join(str(hour) for hour in range(24))


def timed(label: str, call: Any) -> Any:
    began = time.process_time()
    result = call()
    print(f"{label}: {(time.process_time() - began) * 1000:.1f} ms CPU")
    return result


@pytest.mark.parametrize(
    ("rule", "part"),
    [
        *[(f"FREQ={freq};INTERVAL={most + 1}", "INTERVAL") for freq, most in MAX_INTERVAL.items()],
        ("FREQ=DAILY;INTERVAL=1000000", "INTERVAL"),
        (f"FREQ=WEEKLY;COUNT={MAX_COUNT + 1}", "COUNT"),
    ],
)
def test_an_interval_or_count_no_schedule_needs_is_refused_naming_it(rule: str, part: str) -> None:
    with pytest.raises(RecurrenceError, match=f"{part} must be at most"):
        validate(rule, datetime(2026, 1, 5, 8, tzinfo=UTC), "Europe/Berlin")


@pytest.mark.parametrize(
    "rule",
    [*[f"FREQ={freq};INTERVAL={most}" for freq, most in MAX_INTERVAL.items()],
     f"FREQ=WEEKLY;COUNT={MAX_COUNT}"],
)  # fmt: skip
def test_the_largest_allowed_interval_and_count_are_accepted(rule: str) -> None:
    validate(rule, datetime(2026, 1, 5, 8, tzinfo=UTC), "Europe/Berlin")


async def test_a_huge_interval_is_a_422_over_http(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    body = {
        "title": "x",
        "due_at": "2026-01-05T08:00:00Z",
        "recurrence": "FREQ=DAILY;INTERVAL=1000000",
    }
    response = await tasks.client.post(f"{API}/tasks", json=body, headers=agent.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("tasks-invalid-recurrence")
    assert "INTERVAL must be at most 1000" in response.json()["detail"]


HOURLY = f"FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR={HOURS};COUNT={MAX_COUNT}"


def test_the_next_occurrence_of_a_counted_rule_walks_its_start_once(periods: list[int]) -> None:
    """An hourly COUNT=10000 series walked its 60 weeks from the start again for each of the
    48 occurrences in the two days before the moment (2,900 periods, 0.4 s)."""
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    series = validate(HOURLY, start, "Europe/Berlin")
    local = start.astimezone(zone("Europe/Berlin"))
    walked = [series._utc(o) for o in dateutil_rrule.rrulestr(HOURLY, dtstart=local)]
    periods[0] = 0
    found = timed(
        "next after the 9,999th of an hourly COUNT", lambda: series.next_after(walked[-2])
    )
    assert found == walked[-1]
    assert periods[0] <= 80, periods[0]
    periods[0] = 0
    assert timed("count before it", lambda: series.count_before(walked[-1])) == MAX_COUNT - 1
    assert periods[0] <= 80, periods[0]


def test_counting_before_a_moment_long_after_the_end_stops_at_count(periods: list[int]) -> None:
    series = validate(
        f"FREQ=DAILY;BYHOUR={HOURS};BYDAY=MO;COUNT=3", datetime(2026, 1, 5, tzinfo=UTC), "UTC"
    )
    periods[0] = 0
    assert series.count_before(datetime(2999, 1, 1, tzinfo=UTC)) == 3
    assert periods[0] <= 5, periods[0]


@pytest.mark.parametrize(
    ("rule", "start"),
    [
        (HOURLY, datetime(2026, 1, 5, 8, tzinfo=UTC)),
        # monthly periods from the earliest start to the last year a task may be due
        (f"FREQ=MONTHLY;BYMONTHDAY=1;COUNT={MAX_COUNT}", datetime(1900, 1, 1, 8, tzinfo=UTC)),
        ("FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;COUNT=50",
         datetime(1904, 2, 29, 8, tzinfo=UTC)),
        (f"FREQ=DAILY;BYDAY=MO;COUNT={MAX_COUNT}", datetime(1900, 1, 1, 8, tzinfo=UTC)),
        (f"FREQ=YEARLY;BYYEARDAY=1,2,3,4,5,6,7,8,9,10;BYHOUR={HOURS};COUNT={MAX_COUNT}",
         datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_the_worst_allowed_count_rules_walk_a_bounded_number_of_periods(
    periods: list[int], rule: str, start: datetime
) -> None:
    series = validate(rule, start, "UTC")
    late = datetime(2999, 6, 1, tzinfo=UTC)
    periods[0] = 0
    timed(f"next after 2999 of {rule[:50]}", lambda: series.next_after(late, before=LATEST_DUE))
    timed(f"count before 2999 of {rule[:50]}", lambda: series.count_before(late))
    assert periods[0] <= 2 * 13_300, periods[0]  # the months of 1900-2999, both walks


START_2028 = datetime(2028, 2, 29, 8, 0, tzinfo=UTC)
EVERY_22ND = "FREQ=DAILY;INTERVAL=22;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU"  # 2028, then 4000


@pytest.mark.parametrize(
    "rule",
    [
        EVERY_22ND,
        # a DAILY INTERVAL=32 rule was walked a period a day: on to 3200, 13,000 periods
        "FREQ=DAILY;INTERVAL=32;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU",
        "FREQ=WEEKLY;INTERVAL=9;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU",
        "FREQ=MONTHLY;INTERVAL=13;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU",
        "FREQ=YEARLY;INTERVAL=100;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU",
        "FREQ=DAILY;INTERVAL=366;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU",
        "FREQ=WEEKLY;INTERVAL=52;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU",
    ],
)
def test_a_rule_whose_next_match_is_centuries_away_ends_within_a_hundred_years(
    periods: list[int], rule: str
) -> None:
    """Completing the 2028 occurrence walked ~970 years (0.1-0.3 s) to stop at 3000; the
    search stops a hundred years on now, and the series ends there."""
    series = validate(rule, START_2028, "UTC")
    periods[0] = 0
    found = timed(f"next of {rule}", lambda: series.next_after(START_2028, before=LATEST_DUE))
    assert found is None
    assert periods[0] <= 1_300, periods[0]  # at most 1,200 months, or ~130 years


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # leap-day Mondays: 2072, then 2112 (40 years over 2100, no leap year)
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", datetime(2112, 2, 29, 8, tzinfo=UTC)),
        # the largest yearly INTERVAL: exactly a hundred years on
        ("FREQ=YEARLY;INTERVAL=100", datetime(2172, 1, 4, 8, tzinfo=UTC)),
    ],
)
def test_a_gap_of_up_to_a_hundred_years_is_still_found(rule: str, expected: datetime) -> None:
    moment = (
        datetime(2072, 2, 29, 8, tzinfo=UTC)
        if "BYMONTHDAY" in rule
        else datetime(2072, 1, 4, 8, tzinfo=UTC)
    )
    series = validate(rule, moment, "UTC")
    assert series.next_after(moment, before=LATEST_DUE) == expected


def test_a_rule_stored_before_the_limits_is_still_evaluated() -> None:
    """A row saved before INTERVAL was bounded: one occurrence, then the series ends."""
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    series = Series("FREQ=DAILY;INTERVAL=9999999999;BYDAY=MO", start, "Europe/Berlin")
    assert series.first() == start
    assert series.next_after(start, before=LATEST_DUE) is None
    assert series.next_after(start + timedelta(days=1)) is None


@pytest.mark.parametrize(
    "rule",
    ["FREQ=DAILY;INTERVAL=367;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU",
     "FREQ=WEEKLY;INTERVAL=53;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU"],
)  # fmt: skip
def test_a_rare_rule_walked_a_period_at_a_time_walks_at_most_to_9999(
    periods: list[int], rule: str
) -> None:
    """dateutil checks UNTIL only on an occurrence it makes: a rule with a larger INTERVAL
    walks on to its next match or to 9999, under 8,000 periods with these INTERVALs."""
    series = validate(rule, START_2028, "UTC")
    periods[0] = 0
    found = timed(f"next of {rule}", lambda: series.next_after(START_2028, before=LATEST_DUE))
    assert found is None
    assert periods[0] <= 8_000, periods[0]
