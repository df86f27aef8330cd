"""Quiet hours and digest times in the user's zone (DST-correct through zoneinfo)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return ZoneInfo("UTC")


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _local(day: date, at: time, tz: ZoneInfo, *, later: bool = False) -> datetime:
    """``day`` ``at`` in ``tz`` as UTC. A time in a spring-forward gap moves past it; a
    time that happens twice (the autumn change) is its first instance, or its second
    with ``later``."""
    moment = datetime.combine(day, at, tzinfo=tz)
    back = moment.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) != moment.replace(tzinfo=None):  # in the gap
        moment = back
    elif later:
        moment = moment.replace(fold=1)  # the same wall time after the change, if twice
    return moment.astimezone(UTC)


def release_at(now: datetime, tz: ZoneInfo, start: str | None, end: str | None) -> datetime:
    """``now``, or the end of the quiet hours ``now`` falls in.

    Quiet hours are wall-clock times: on the night a time happens twice they start at
    its first instance and end at its second (22:00-02:30 on the last Sunday of October
    in Berlin ends at 02:30 CET, an hour after 02:30 CEST), so they never end early.
    """
    if not start or not end or start == end:
        return now
    begin, finish = _hhmm(start), _hhmm(end)
    today = now.astimezone(tz).date()
    for first_day in (today - timedelta(days=1), today):  # the spell begun yesterday or today
        end_day = first_day if begin < finish else first_day + timedelta(days=1)
        opens, closes = _local(first_day, begin, tz), _local(end_day, finish, tz, later=True)
        if opens <= now < closes:
            return closes
    return now


def digest_due(
    now: datetime,
    tz: ZoneInfo,
    hour: int,
    last_on: date | None,
    quiet_start: str | None = None,
    quiet_end: str | None = None,
) -> date | None:
    """The local date whose digest is due at ``now`` (none sent yet that day, its hour
    reached), or none. Never inside the user's quiet hours: a digest whose hour falls in
    them goes when they end, on the next local day too (23:00 in 22:00-07:00 is sent at
    07:00 as the day before's digest)."""
    if release_at(now, tz, quiet_start, quiet_end) > now:
        return None
    today = now.astimezone(tz).date()
    at = time(hour, 0)
    if (last_on is None or last_on < today) and now >= _local(today, at, tz):
        return today
    yesterday = today - timedelta(days=1)
    due = _local(yesterday, at, tz)
    held = release_at(due, tz, quiet_start, quiet_end)
    if (last_on is None or last_on < yesterday) and held > due and now >= held:
        return yesterday
    return None


def valid_hhmm(text: str) -> bool:
    try:
        _hhmm(text)
    except ValueError:
        return False
    return len(text) == 5


def zone_strict(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    # OSError: a tzdata folder such as "Europe" is a directory, not a zone
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone") from exc
