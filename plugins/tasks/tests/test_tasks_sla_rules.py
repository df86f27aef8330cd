"""SLA arithmetic (pauses in business time, warnings) and the choice of policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from crm2_tasks.calendar import BusinessCalendar
from crm2_tasks.sla import choose_policy, elapsed, paused_after_resume, plan, raised

BERLIN = ZoneInfo("Europe/Berlin")
CAL = BusinessCalendar.from_spec(
    "Europe/Berlin", {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def test_plan_puts_warning_and_deadline_in_business_time() -> None:
    timers = plan(CAL, berlin(2026, 3, 27, 13), timedelta(hours=8), 0.5)
    assert timers.warn_at == berlin(2026, 3, 27, 17)  # 4 h: Friday closing
    assert timers.due_at == berlin(2026, 3, 30, 13)  # Monday, after the DST weekend


def test_a_pause_moves_the_deadline_by_the_business_time_it_lasted() -> None:
    start = berlin(2026, 3, 23, 9)
    paused = paused_after_resume(
        CAL, timedelta(0), berlin(2026, 3, 23, 15), berlin(2026, 3, 24, 11)
    )
    assert paused == timedelta(hours=4)  # 15-17 Monday, 09-11 Tuesday; the night is free
    assert plan(CAL, start, timedelta(hours=8), None, paused).due_at == berlin(2026, 3, 24, 13)
    assert elapsed(CAL, start, berlin(2026, 3, 24, 12), paused) == timedelta(hours=7)


def test_elapsed_stands_still_while_paused() -> None:
    start, since = berlin(2026, 3, 23, 9), berlin(2026, 3, 23, 10)
    later = berlin(2026, 3, 25, 10)
    assert elapsed(CAL, start, later, timedelta(0), paused_since=since) == timedelta(hours=1)


def test_no_warning_without_a_share() -> None:
    assert plan(CAL, berlin(2026, 3, 23, 9), timedelta(hours=1), None).warn_at is None


def test_raise_priority_stops_at_urgent() -> None:
    assert [raised(p) for p in ("low", "normal", "high", "urgent")] == [
        "normal",
        "high",
        "urgent",
        "urgent",
    ]


@dataclass
class P:
    name: str
    priority: str | None = None
    tag: str | None = None
    active: bool = True


def test_the_most_specific_active_policy_wins() -> None:
    policies = [
        P("any"),
        P("urgent", priority="urgent"),
        P("vip", tag="vip"),
        P("vip urgent", priority="urgent", tag="vip"),
        P("off", priority="urgent", tag="vip", active=False),
    ]
    assert choose_policy(policies, "urgent", ["vip"]).name == "vip urgent"  # type: ignore[union-attr]
    assert choose_policy(policies, "urgent", []).name == "urgent"  # type: ignore[union-attr]
    assert choose_policy(policies, "low", ["vip"]).name == "vip"  # type: ignore[union-attr]
    assert choose_policy(policies, "low", []).name == "any"  # type: ignore[union-attr]
    assert choose_policy([P("x", priority="high")], "low", []) is None
