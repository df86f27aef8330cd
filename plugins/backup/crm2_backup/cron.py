"""Five-field cron expressions (minute hour day-of-month month day-of-week), UTC.

Enough for backup schedules: ``*``, lists, ranges and steps. ``previous(now)``
is the latest due time at or before ``now``: the key that makes a schedule run
once per due time, however many processes look.

The two day fields follow crontab(5) as vixie cron and cronie implement it: when
both are restricted — neither starts with ``*`` — a day matches when *either*
does; otherwise both must. ``*/2`` starts with ``*``, so it is not restricted:
``0 3 */2 * 1`` is odd days that are Mondays (``1-31/2`` instead would be OR-ed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_LONGEST = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}  # other months: 31; Feb 29 comes, in leap years


class CronError(ValueError):
    pass


def _number(text: str) -> bool:
    """ASCII digits, few enough for a cron field (str.isdigit() also takes "²")."""
    return text.isascii() and text.isdigit() and len(text) <= 4


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        if step_text and (not _number(step_text) or int(step_text) < 1):
            raise CronError(f"bad step in {part!r}")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            if not (_number(a) and _number(b)):
                raise CronError(f"bad range {body!r}")
            start, end = int(a), int(b)
        elif _number(body):
            start = int(body)
            end = high if step_text else start
        else:
            raise CronError(f"bad cron field {part!r}")
        if not (low <= start <= end <= high):
            raise CronError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as cron says
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"a cron expression has 5 fields, {text!r} has {len(parts)}")
        fields = [_field(p, *_RANGES[i]) for i, p in enumerate(parts)]
        fields[4] = frozenset(d % 7 for d in fields[4])  # 7 is Sunday too
        minutes, hours, days, months, weekdays = fields
        # vixie/cronie flag a day field as "*" from its first character, before parsing it:
        # "*/2" and "*,10" are unrestricted there, and so here (crontab(5))
        any_day, any_weekday = parts[2].startswith("*"), parts[4].startswith("*")
        if any_weekday and not any(d <= _LONGEST.get(m, 31) for m in months for d in days):
            # Feb 30, Apr 31 …: a schedule that would silently never make a backup
            raise CronError(f"{text!r} is never due: no month in it has that day")
        return cls(minutes, hours, days, months, weekdays, any_day=any_day, any_weekday=any_weekday)

    def matches(self, at: datetime) -> bool:
        return (
            at.minute in self.minutes
            and at.hour in self.hours
            and at.month in self.months
            and self._day_ok(at)
        )

    def previous(
        self, now: datetime, *, within: timedelta = timedelta(days=400)
    ) -> datetime | None:
        """The latest due minute at or before ``now`` (``None`` if none within ``within``)."""
        at = now.replace(second=0, microsecond=0)
        floor = at - within
        while at >= floor:
            if at.month not in self.months:
                at = at.replace(day=1, hour=0, minute=0) - timedelta(minutes=1)
                continue
            if not self._day_ok(at):
                at = at.replace(hour=0, minute=0) - timedelta(minutes=1)
                continue
            if at.hour not in self.hours:
                at = at.replace(minute=0) - timedelta(minutes=1)
                continue
            if at.minute in self.minutes:
                return at
            at -= timedelta(minutes=1)
        return None

    def _day_ok(self, at: datetime) -> bool:
        day_ok = at.day in self.days
        weekday_ok = (at.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok  # both restricted (neither starts with "*"): either may match
