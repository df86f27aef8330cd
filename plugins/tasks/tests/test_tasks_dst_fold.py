"""Wall times a fall-back night shows twice: a series keeps the one its start is at.

Berlin, Sunday 25 October 2026: 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice,
at 00:30 UTC (CEST, ``fold=0``) and at 01:30 UTC (CET, ``fold=1``). dateutil builds its
occurrences without ``fold``; the series carries the start's, on this night and on the
fall-back nights of later years.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from crm2_tasks.clock import set_clock
from crm2_tasks.recurrence import validate
from tasks_kit import API, Tasks

FIRST = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
SECOND = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, an hour later
LAST_SUNDAY_OF_OCTOBER = "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"


def test_a_series_starting_at_the_second_0230_has_it_as_first_occurrence() -> None:
    series = validate("FREQ=DAILY", SECOND, "Europe/Berlin")
    assert series.first() == SECOND
    assert series.next_after(FIRST) == SECOND
    assert series.next_after(SECOND) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    assert series.count_before(datetime(2026, 10, 25, 1, 31, tzinfo=UTC)) == 1


@pytest.mark.parametrize(("start", "next_year"), [(FIRST, "00:30"), (SECOND, "01:30")])
def test_later_fall_back_nights_keep_the_start_s_one(start: datetime, next_year: str) -> None:
    series = validate(LAST_SUNDAY_OF_OCTOBER, start, "Europe/Berlin")
    assert series.first() == start
    following = series.next_after(start)
    assert following == datetime.fromisoformat(f"2027-10-31T{next_year}:00+00:00")


def test_only_one_occurrence_on_the_night_itself() -> None:
    series = validate("FREQ=DAILY", FIRST, "Europe/Berlin")
    assert series.next_after(FIRST) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


async def test_a_counted_series_at_the_second_0230_is_accepted_and_goes_on(tasks: Tasks) -> None:
    set_clock(tasks.app.context, lambda: datetime(2026, 10, 1, tzinfo=UTC))
    agent = await tasks.user("agent")
    once = await tasks.client.post(
        f"{API}/tasks",
        json={
            "title": "Night shift check",
            "due_at": "2026-10-25T01:30:00Z",
            "recurrence": "FREQ=DAILY;COUNT=1",
            "timezone": "Europe/Berlin",
        },
        headers=agent.headers,
    )
    assert once.status_code == 201, once.text  # was a 422: "no occurrence within five years"
    yearly = await tasks.create(
        agent,
        due_at="2026-10-25T01:30:00Z",
        recurrence=LAST_SUNDAY_OF_OCTOBER,
        timezone="Europe/Berlin",
    )
    done = await tasks.client.post(f"{API}/tasks/{yearly['id']}/complete", headers=agent.headers)
    assert done.status_code == 200, done.text
    next_id = done.headers["Link"].split(">")[0].split("/")[-1]
    assert (await tasks.get(agent, next_id)).json()["due_at"] == "2027-10-31T01:30:00Z"
