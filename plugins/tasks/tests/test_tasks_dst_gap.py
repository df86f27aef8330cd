"""Wall times that a spring-forward gap skips resolve to the first valid instant after it.

Berlin, Sunday 29 March 2026: 02:00 CET jumps to 03:00 CEST (01:00 UTC), so 02:30 does
not exist that day. Business days and repeating tasks that land on 02:30 are due at
03:00 CEST, never at 03:30 (02:30 read with the winter offset) or at a naive 02:30.
An automation rule's "due_in: N days" is N calendar days at the same wall time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from crm2_tasks.calendar import BusinessCalendar
from crm2_tasks.clock import set_clock
from crm2_tasks.recurrence import validate
from crm2_tasks.service.automations import due_at
from tasks_kit import API, Tasks

BERLIN = ZoneInfo("Europe/Berlin")
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
JUMP = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST, the first instant after the gap


def round_the_clock() -> BusinessCalendar:
    return BusinessCalendar.from_spec("Europe/Berlin", {d: [["00:00", "24:00"]] for d in ALL_DAYS})


def test_business_days_landing_in_the_gap_are_due_at_the_jump() -> None:
    cal = round_the_clock()
    start = datetime(2026, 3, 28, 2, 30, tzinfo=BERLIN)  # Saturday 02:30 CET
    assert cal.add_days(start, 1) == JUMP
    # the day after keeps its 02:30 again
    assert cal.add_days(start, 2) == datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN)


def test_a_daily_series_at_a_gap_time_falls_on_the_jump_and_goes_on() -> None:
    series = validate("FREQ=DAILY", datetime(2026, 3, 27, 2, 30, tzinfo=BERLIN), "Europe/Berlin")
    saturday = series.next_after(datetime(2026, 3, 27, 2, 30, tzinfo=BERLIN))
    assert saturday == datetime(2026, 3, 28, 2, 30, tzinfo=BERLIN)
    sunday = series.next_after(saturday)
    assert sunday == JUMP
    # from the resolved instant the series goes on to Monday (no repeat, no end)
    assert series.next_after(sunday) == datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN)
    assert series.next_after(sunday - timedelta(minutes=1)) == JUMP


async def test_completing_the_occurrence_before_the_gap_gives_one_due_at_the_jump(
    tasks: Tasks,
) -> None:
    set_clock(tasks.app.context, lambda: datetime(2026, 3, 27, tzinfo=UTC))
    agent = await tasks.user("agent")
    first = await tasks.create(
        agent,
        due_at="2026-03-28T02:30:00+01:00",
        recurrence="FREQ=DAILY",
        timezone="Europe/Berlin",
    )
    done = await tasks.client.post(f"{API}/tasks/{first['id']}/complete", headers=agent.headers)
    assert done.status_code == 200, done.text
    sunday_id = done.headers["Link"].split(">")[0].split("/")[-1]
    sunday = (await tasks.get(agent, sunday_id)).json()
    assert sunday["due_at"] == "2026-03-29T01:00:00Z"
    again = await tasks.client.post(f"{API}/tasks/{sunday_id}/complete", headers=agent.headers)
    monday = (await tasks.get(agent, again.headers["Link"].split(">")[0].split("/")[-1])).json()
    assert monday["due_at"] == "2026-03-30T00:30:00Z"  # 02:30 CEST


class _Context:
    """What ``due_at`` reads of the application context: the plugin's time zone."""

    def plugin_settings(self, name: str) -> SimpleNamespace:
        assert name == "tasks"
        return SimpleNamespace(timezone="Europe/Berlin")


@pytest.mark.parametrize(
    ("due_in", "expected"),
    [
        ("1 day", datetime(2026, 3, 29, 9, 0, tzinfo=BERLIN)),  # 07:00 UTC, not 08:00
        ("1 week", datetime(2026, 4, 4, 9, 0, tzinfo=BERLIN)),
        ("24 hours", datetime(2026, 3, 29, 10, 0, tzinfo=BERLIN)),  # hours are elapsed time
    ],
)
def test_a_rule_s_due_in_days_keeps_the_local_wall_time_across_the_dst_change(
    due_in: str, expected: datetime
) -> None:
    saturday_9 = datetime(2026, 3, 28, 9, 0, tzinfo=BERLIN)  # 08:00 UTC
    assert due_at(_Context(), due_in, saturday_9.astimezone(UTC)) == expected


def test_a_rule_s_due_in_days_landing_in_the_gap_is_due_at_the_jump() -> None:
    saturday = datetime(2026, 3, 28, 2, 30, tzinfo=BERLIN)
    assert due_at(_Context(), "1 day", saturday.astimezone(UTC)) == JUMP
