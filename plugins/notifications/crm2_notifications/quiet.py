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


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``day`` ``at`` in ``tz`` as UTC; a time in a spring-forward gap moves past it."""
    moment = datetime.combine(day, at, tzinfo=tz)
    back = moment.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) != moment.replace(tzinfo=None):  # in the gap
        moment = back
    return moment.astimezone(UTC)


def release_at(now: datetime, tz: ZoneInfo, start: str | None, end: str | None) -> datetime:
    """``now``, or the end of the quiet hours ``now`` falls in."""
    if not start or not end or start == end:
        return now
    local = now.astimezone(tz)
    begin, finish = _hhmm(start), _hhmm(end)
    clock = local.time().replace(tzinfo=None)
    if begin < finish:  # 13:00-14:00
        inside = begin <= clock < finish
        end_day = local.date()
    else:  # 22:00-07:00, across midnight
        inside = clock >= begin or clock < finish
        end_day = local.date() + timedelta(days=1) if clock >= begin else local.date()
    return _local(end_day, finish, tz) if inside else now


def digest_due(now: datetime, tz: ZoneInfo, hour: int, last_on: date | None) -> date | None:
    """The local date whose digest is due at ``now`` (none sent yet today, hour reached)."""
    local = now.astimezone(tz)
    if local.hour < hour or last_on == local.date():
        return None
    return local.date()


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
