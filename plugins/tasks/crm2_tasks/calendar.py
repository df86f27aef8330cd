"""Business calendars: working hours per weekday in a time zone, minus holidays.

Pure arithmetic, no database. Working hours are wall-clock times in the
calendar's zone ("09:00-17:00 in Europe/Berlin" stays 09:00-17:00 across the
DST changes), while durations are real elapsed time: an interval is turned
into two UTC instants and measured between them. So a working day on a DST
date is still 8 real hours, and an interval that a DST gap swallows
(02:00-03:00 on the spring-forward night) is 0 hours long.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# No calendar is all holidays for ten years; past that the arithmetic gives up
# instead of looping (a calendar without any working hour is refused earlier).
HORIZON_DAYS = 3660

Interval = tuple[time, time]


class CalendarError(ValueError):
    """A calendar definition that cannot be used (the service turns it into a 422)."""


def parse_hhmm(value: str) -> time:
    """``"09:30"`` → ``time(9, 30)``; ``"24:00"`` is the end of the day (``time.max``)."""
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise CalendarError(f"{value!r} is not a HH:MM time")
    hh, mm = value[:2], value[3:]
    if not (hh.isascii() and hh.isdigit() and mm.isascii() and mm.isdigit()):
        raise CalendarError(f"{value!r} is not a HH:MM time")
    hours, minutes = int(hh), int(mm)
    if (hours, minutes) == (24, 0):
        return time.max
    if hours > 23 or minutes > 59:
        raise CalendarError(f"{value!r} is not a time of day")
    return time(hours, minutes)


def format_hhmm(value: time) -> str:
    return "24:00" if value == time.max else value.strftime("%H:%M")


# Files of the tz database that name no place: "localtime" is whatever zone the host is
# set to (so a series in it would move with the server), "posixrules" a template for
# POSIX TZ strings and "Factory" a placeholder whose abbreviation is "-00".
NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def _place_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_PLACES


def known_zone(name: str) -> str:
    """``name`` if it is an IANA zone name of a place (``Europe/Berlin``, ``UTC``), else
    ``CalendarError``: a folder, a host-dependent or placeholder name is refused."""
    if name not in _place_zones():
        raise CalendarError(f"unknown time zone {name!r}: give an IANA name such as Europe/Berlin")
    return name


def zone_problems(name: str) -> list[str]:
    """Why a stored zone is one ``known_zone`` would refuse now (empty when it is fine).
    Series and calendars saved before that check keep their zone, as no migration can know
    the place meant; they are flagged (and logged at start-up) instead."""
    if name in _place_zones():
        return []
    return [
        f"time zone {name!r} names no place (stored before such zones were refused): "
        "set an IANA name such as Europe/Berlin"
    ]


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    # OSError: a tzdata folder such as "America" is a directory, not a zone
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CalendarError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours per weekday (0 = Monday) in ``tz``, without ``holidays`` (local dates)."""

    tz: ZoneInfo
    hours: Mapping[int, Sequence[Interval]]
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for weekday, intervals in self.hours.items():
            if weekday not in range(7):
                raise CalendarError(f"weekday {weekday} is not 0 (Monday) … 6 (Sunday)")
            ordered = sorted(intervals)
            for start, end in ordered:
                if not start < end:
                    raise CalendarError(
                        f"{WEEKDAYS[weekday]}: {format_hhmm(start)}-{format_hhmm(end)} "
                        "must end after it starts (split a night shift at midnight)"
                    )
            for (_, end), (start, _) in itertools.pairwise(ordered):
                if start < end:
                    raise CalendarError(f"{WEEKDAYS[weekday]}: working hours overlap")
        if not any(self.hours.get(d) for d in range(7)):
            raise CalendarError("a calendar needs working hours on at least one weekday")

    # -- building --------------------------------------------------------------------

    @classmethod
    def from_spec(
        cls,
        timezone: str,
        hours: Mapping[str, Iterable[Sequence[str]]],
        holidays: Iterable[date | str] = (),
    ) -> BusinessCalendar:
        """From the stored / API form: ``{"mon": [["09:00", "17:00"]], …}``, ISO dates."""
        parsed: dict[int, list[Interval]] = {}
        for name, intervals in hours.items():
            if name not in WEEKDAYS:
                raise CalendarError(f"{name!r} is not a weekday ({', '.join(WEEKDAYS)})")
            parsed[WEEKDAYS.index(name)] = []
            for pair in intervals:
                if len(pair) != 2:
                    raise CalendarError(f"{name}: give working hours as [start, end] pairs")
                parsed[WEEKDAYS.index(name)].append((parse_hhmm(pair[0]), parse_hhmm(pair[1])))
        days = frozenset(d if isinstance(d, date) else date.fromisoformat(d) for d in holidays)
        return cls(tz=zone(timezone), hours=parsed, holidays=days)

    @classmethod
    def standard(cls, timezone: str = "UTC") -> BusinessCalendar:
        """Monday to Friday, 09:00-17:00."""
        nine_to_five = [(time(9), time(17))]
        return cls(tz=zone(timezone), hours={d: nine_to_five for d in range(5)})

    # -- the arithmetic --------------------------------------------------------------

    def _instant(self, day: date, moment: time) -> datetime:
        if moment == time.max:  # 24:00 is the next day's midnight
            local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz)
        else:
            local = datetime.combine(day, moment, tzinfo=self.tz)
        return wall_instant(local)

    def day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of a local date as UTC instants (none on a holiday)."""
        if day in self.holidays:
            return []
        result = []
        for start, end in sorted(self.hours.get(day.weekday(), ())):
            begin, finish = self._instant(day, start), self._instant(day, end)
            if begin < finish:  # a DST gap can swallow an interval whole
                result.append((begin, finish))
        return result

    def _intervals_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals that end after ``moment``, clipped to start at it, in order."""
        moment = _aware(moment)
        # the day before too: a UTC instant may fall on the previous local date's interval
        day = moment.astimezone(self.tz).date() - timedelta(days=1)
        for _ in range(HORIZON_DAYS):
            for begin, finish in self.day_intervals(day):
                if finish > moment:
                    yield max(begin, moment), finish
            day += timedelta(days=1)
        raise CalendarError(f"no working time within {HORIZON_DAYS} days of {moment.isoformat()}")

    def is_working(self, moment: datetime) -> bool:
        moment = _aware(moment)
        day = moment.astimezone(self.tz).date()
        return any(
            begin <= moment < finish
            for d in (day - timedelta(days=1), day)
            for begin, finish in self.day_intervals(d)
        )

    def next_working(self, moment: datetime) -> datetime:
        """``moment`` itself during working hours, else the start of the next working interval."""
        begin, _ = next(self._intervals_from(moment))
        return begin

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant when ``amount`` of working time has passed since ``start``.

        ``amount == 0`` gives ``start`` itself. When the amount runs out exactly at
        the end of an interval, that end is the answer (17:00, not the next 09:00).
        """
        if amount < timedelta(0):
            raise CalendarError("business time to add cannot be negative")
        start = _aware(start)
        if amount == timedelta(0):
            return start
        remaining = amount
        for begin, finish in self._intervals_from(start):
            length = finish - begin
            if remaining <= length:
                return begin + remaining
            remaining -= length
        raise AssertionError("unreachable: _intervals_from raises at its horizon")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in ``[start, end)`` (zero when ``end <= start``)."""
        start, end = _aware(start), _aware(end)
        total = timedelta(0)
        if end <= start:
            return total
        for begin, finish in self._intervals_from(start):
            if begin >= end:
                break
            total += min(finish, end) - begin
        return total

    def add_days(self, start: datetime, days: int) -> datetime:
        """``days`` business days after ``start``, at the same local wall time.

        ``start`` outside working hours counts from the next opening (a request
        on Saturday is received on Monday morning). The result keeps the wall
        time on the ``days``-th following working day, moved into that day's
        hours when it falls outside them (to the next opening that day, or its
        closing time when the day is already over).
        """
        if days < 0:
            raise CalendarError("business days to add cannot be negative")
        opened = self.next_working(start)
        if days == 0:
            return opened
        local = opened.astimezone(self.tz)
        day, wall = local.date(), local.time().replace(tzinfo=None)
        counted = 0
        for _ in range(HORIZON_DAYS):
            day += timedelta(days=1)
            if self.day_intervals(day):
                counted += 1
                if counted == days:
                    return self._at_wall_time(day, wall)
        raise CalendarError(f"no {days} working days within {HORIZON_DAYS} days")

    def _at_wall_time(self, day: date, wall: time) -> datetime:
        intervals = self.day_intervals(day)
        # a wall time the day's spring-forward gap skips is the jump (wall_instant), not
        # the same wall time read with the winter offset (an hour after the jump)
        moment = self._instant(day, wall)
        for begin, finish in intervals:
            if moment < begin:
                return begin
            if moment <= finish:
                return moment
        return intervals[-1][1]

    def add_business(self, start: datetime, amount: int, unit: str) -> datetime:
        """``unit`` is ``"hours"``, ``"minutes"`` or ``"days"`` of business time."""
        if unit == "days":
            return self.add_days(start, amount)
        if unit == "hours":
            return self.add(start, timedelta(hours=amount))
        if unit == "minutes":
            return self.add(start, timedelta(minutes=amount))
        raise CalendarError(f"unknown business-time unit {unit!r}")


def wall_instant(local: datetime) -> datetime:
    """The UTC instant of an aware local wall time; one a spring-forward gap skips is the
    first valid instant after the gap (the jump itself: 02:30 on the night Berlin goes
    from 02:00 to 03:00 is 03:00 CEST, not 03:30).

    This is crm2's one rule for a wall time that does not exist, for business calendars
    and repeating tasks alike. (RFC 5545 reads such a time with the offset before the
    gap, which lands as far past the jump as the time lies past the gap's start.)
    """
    instant = local.astimezone(UTC)
    before, after = local.utcoffset(), local.replace(fold=1).utcoffset()
    if local.tzinfo is not None and before is not None and after is not None and after > before:
        # read with the offset before the gap, the time lies past the jump by its distance
        # from the gap's start; the clock first shows a later time at the jump itself
        tz = local.tzinfo
        return _jump(tz, instant - (after - before), instant)
    return instant


def _jump(tz: tzinfo, earlier: datetime, later: datetime) -> datetime:
    """The instant in ``(earlier, later]`` at which ``tz``'s offset changes (to the second)."""
    low, high = earlier, later
    offset = low.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        middle -= timedelta(microseconds=middle.microsecond)
        if middle <= low:
            break
        if middle.astimezone(tz).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise CalendarError("naive datetime: business-calendar arithmetic needs aware times")
    return moment.astimezone(UTC)
