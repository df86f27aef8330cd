"""RFC 5545 recurrence rules (RRULE) for repeating tasks, evaluated with python-dateutil.

A series has a rule, a start (the first occurrence's due time) and a time zone:
occurrences keep their local wall time across DST changes ("every Monday at
09:00 in Europe/Berlin" is 08:00 UTC in summer and 07:00 UTC in winter),
because dateutil builds each occurrence from the zone-aware start's fields. An
occurrence whose wall time a spring-forward gap skips ("daily at 02:30" on the night
Berlin jumps from 02:00 to 03:00) is due at the first valid instant after the gap,
03:00 (``calendar.wall_instant``); two occurrences inside one gap are one. A wall time
a fall-back night shows twice (02:30 on the night Berlin goes from 03:00 back to 02:00) is
the one the start is at: a series that starts at the second 02:30 (``fold=1``) has its
first occurrence there, and its occurrences on later fall-back nights are the second
02:30 too; otherwise they are the first (dateutil builds occurrences without ``fold``,
so the series carries it).

Only the rule part is accepted from clients (``FREQ=WEEKLY;BYDAY=MO,TH``); the
start comes from the task. Frequencies below a day are refused: a task that
repeats every minute is a job, not a task.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from itertools import dropwhile, islice, takewhile
from typing import Any

from dateutil.rrule import (  # type: ignore[import-untyped]
    DAILY,
    MONTHLY,
    WEEKLY,
    YEARLY,
    rrule,
    rrulestr,
    weekday,
)

from crm2_tasks.calendar import CalendarError, wall_instant, zone

ALLOWED_FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
# A rule must give its first occurrence within this window, else it is refused:
# it bounds the work dateutil does for a rule that (almost) never matches.
PROBE_WINDOW = timedelta(days=366 * 5)
# dateutil steps through the periods of a rule that matches nothing until the year 9999
# (UNTIL stops it only once it has a match): "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30" walked
# 2.9 million days, half a minute of a request. The probe runs on the same calendar moved
# to just before 9999, so it stops a few decades after its window.
PROBE_YEARS = 7  # the window's years, from the start's own
# No real schedule needs more: a larger INTERVAL is refused (422 naming it), per FREQ
# about a decade (DAILY ~2.7 years, WEEKLY 10, MONTHLY 10, YEARLY a century).
MAX_INTERVAL = {"DAILY": 1000, "WEEKLY": 520, "MONTHLY": 120, "YEARLY": 100}
# A COUNT rule other than a plain daily one is walked from the series' start: with at most
# this many occurrences the walk stays in tens of milliseconds (measured in the tests).
MAX_COUNT = 10_000
# The next occurrence is searched this far after the current one, and the series ends
# when none is found: a rare rule's next match in phase can be centuries on (leap-day
# Tuesdays every 22nd day: 2028, then 4000), each year of it a period to walk. A hundred
# years (and a day: YEARLY;INTERVAL=100 is allowed) hold any real schedule's gap.
NEXT_WITHIN = timedelta(days=366 * 100)
# A task at most every hour (a task that repeats every minute is a job, not a task).
MAX_PER_DAY = 24
# Parts dateutil reads beyond RFC 5545: BYEASTER (IndexError far from Easter, and no
# calendar cycle for the probe), BYWEEKDAY (an alias of BYDAY).
NOT_RFC_5545 = ("BYEASTER", "BYWEEKDAY")
RULE_PATTERN = re.compile(r"^[A-Z]+=[A-Za-z0-9,+\-:]+(;[A-Z]+=[A-Za-z0-9,+\-:]+)*$")
MAX_RULE_LENGTH = 500
# A gap-resolved occurrence is at most this much earlier than its wall time (the longest
# gap on record is a whole day: Samoa, 30 December 2011).
GAP_SLACK = timedelta(days=2)


class RecurrenceError(ValueError):
    """A rule that cannot be used; the service turns it into a 422."""


@dataclass(frozen=True)
class Series:
    """A rule evaluated from ``start`` (aware) in ``timezone``."""

    rule: str
    start: datetime
    timezone: str

    def _rrule(self) -> rrule:
        tz = zone(self.timezone)
        local_start = self.start.astimezone(tz)
        parsed = rrulestr(self.rule, dtstart=local_start)
        if not isinstance(parsed, rrule):  # an RRULE line only, never an rruleset
            raise RecurrenceError("give one RRULE")
        return parsed

    def _utc(self, occurrence: datetime) -> datetime:
        """An occurrence dateutil made (``fold=0``) as a UTC instant, with the start's fold."""
        return _utc(occurrence, self.start.astimezone(zone(self.timezone)).fold)

    def _from(
        self, moment: datetime, *, inc: bool, before: datetime | None = None
    ) -> datetime | None:
        """The first occurrence after ``moment`` (at it too with ``inc``), gap-resolved.

        A resolved occurrence is never later than the wall time dateutil computes, and at
        most a gap earlier: so the search starts ``GAP_SLACK`` before ``moment`` and steps
        over the occurrences whose resolved instant is not after it.
        """
        rule = self._rrule()
        if rule._interval < 1:  # a row saved before validate refused it: dateutil would spin
            return None
        moment = moment.astimezone(UTC)
        if rule._until is not None and moment - GAP_SLACK > rule._until:
            return None  # ended: dateutil would walk on to its next match to find that out
        stop = None if before is None else before + GAP_SLACK
        walk = _searcher(rule, (moment - GAP_SLACK).astimezone(rule._tzinfo), stop)
        # one pass: each occurrence up to ``moment`` is stepped over without walking the
        # series again from where the walk began (with COUNT, the series' start)
        for found in walk.since(moment - GAP_SLACK):
            resolved = self._utc(found)
            if before is not None and resolved >= before:
                return None
            if resolved > moment or (inc and resolved == moment):
                return resolved
        return None

    def next_after(self, moment: datetime, before: datetime | None = None) -> datetime | None:
        """The first occurrence strictly after ``moment`` (UTC); ``None`` once the series ended,
        or when it is not before ``before`` nor within ``NEXT_WITHIN`` of ``moment``: the walk
        stops there (a rare rule's next match in phase can be thousands of years on, each of
        them a period to walk)."""
        horizon = moment.astimezone(UTC) + NEXT_WITHIN
        return self._from(moment, inc=False, before=min(before or horizon, horizon))

    def first(self) -> datetime | None:
        """The first occurrence at or after the start (the start itself when it matches)."""
        return self._from(self.start, inc=True)

    def count_before(self, moment: datetime) -> int:
        """How many occurrences fall before ``moment`` (to carry a COUNT across a split)."""
        until = moment.astimezone(UTC) + GAP_SLACK
        own = self._rrule()
        rule = own.replace(count=None, until=until)
        start = rule._dtstart
        target = (moment - GAP_SLACK).astimezone(rule._tzinfo).replace(tzinfo=None)
        begin = _period_start(rule, start.replace(tzinfo=None), target)
        made = None if begin is None else _made_before(rule, begin.replace(tzinfo=start.tzinfo))
        if begin is None or made is None:
            made, begin = 0, start
        bounded = _by_year(rule, begin.replace(tzinfo=start.tzinfo))  # past UNTIL it walks on
        # dateutil's count (COUNT counts occurrences as the rule makes them); one well before
        # ``moment`` is before it however a DST change resolves it
        early = moment - GAP_SLACK
        before = (1 for o in bounded if o < early or self._utc(o) < moment)
        # never more than the rule's COUNT: a moment long after its end is not walked to
        left = None if own._count is None else max(own._count - made, 0)
        return made + sum(islice(before, left))

    def ended_before(self, moment: datetime) -> str:
        """This rule ended just before ``moment``: UNTIL set, COUNT dropped (RFC 5545 split)."""
        until = (moment.astimezone(UTC) - timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")
        parts = [p for p in self.rule.split(";") if not p.startswith(("UNTIL=", "COUNT="))]
        return ";".join([*parts, f"UNTIL={until}"])

    def remaining_rule(self, moment: datetime) -> str:
        """The rule for a series that continues this one from ``moment`` on.

        COUNT is reduced by the occurrences before ``moment``; UNTIL carries over.
        """
        parts = self.rule.split(";")
        count = next((p for p in parts if p.startswith("COUNT=")), None)
        if count is None:
            return self.rule
        left = max(int(count.removeprefix("COUNT=")) - self.count_before(moment), 1)
        return ";".join(f"COUNT={left}" if p == count else p for p in parts)


def normalise_rule(rule: str) -> str:
    """Upper-case, strip an ``RRULE:`` prefix and whitespace; refuse what is not an RRULE."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    text = text.upper()
    if not text or len(text) > MAX_RULE_LENGTH or not RULE_PATTERN.match(text):
        raise RecurrenceError(f"{rule!r} is not an RRULE such as FREQ=WEEKLY;BYDAY=MO")
    return text


def validate(rule: str, start: datetime, timezone: str) -> Series:
    """A usable series, or ``RecurrenceError`` saying why not."""
    text = normalise_rule(rule)
    pairs = [part.split("=", 1) for part in text.split(";")]
    fields = dict(pairs)
    if len(fields) < len(pairs):
        raise RecurrenceError("give each part of the rule once (RFC 5545)")
    for name in NOT_RFC_5545:
        if name in fields:
            raise RecurrenceError(f"{name} is not part of RFC 5545")
    per_day = 1
    for part in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        per_day *= len(set(fields[part].split(","))) if part in fields else 1
    if per_day > MAX_PER_DAY:
        raise RecurrenceError(
            f"the rule repeats {per_day} times a day: at most {MAX_PER_DAY} (once an hour)"
        )
    if "DTSTART" in fields:
        raise RecurrenceError("leave DTSTART out: a series starts at the task's due time")
    if fields.get("FREQ") not in ALLOWED_FREQUENCIES:
        raise RecurrenceError(f"FREQ must be one of {', '.join(ALLOWED_FREQUENCIES)}")
    if "COUNT" in fields and "UNTIL" in fields:
        raise RecurrenceError("give COUNT or UNTIL, not both (RFC 5545)")
    for part in ("INTERVAL", "COUNT"):
        if part in fields and not (fields[part].isdigit() and int(fields[part]) >= 1):
            raise RecurrenceError(f"{part} must be at least 1")
    most = MAX_INTERVAL[fields["FREQ"]]
    if int(fields.get("INTERVAL", "1")) > most:
        raise RecurrenceError(f"INTERVAL must be at most {most} with FREQ={fields['FREQ']}")
    if int(fields.get("COUNT", "1")) > MAX_COUNT:
        raise RecurrenceError(f"COUNT must be at most {MAX_COUNT}")
    if "UNTIL" in fields and not fields["UNTIL"].endswith("Z"):
        raise RecurrenceError("UNTIL must be a UTC time such as 20271231T000000Z")
    if start.tzinfo is None:
        raise RecurrenceError("a series starts at an aware time")
    try:
        series = Series(text, start, timezone)
        first = _probe(series)
    except CalendarError as exc:
        raise RecurrenceError(str(exc)) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise RecurrenceError(f"{rule!r}: {exc}") from exc
    except IndexError as exc:  # dateutil's own tables, e.g. BYDAY=+60MO in a month
        raise RecurrenceError(f"{rule!r} names a day no month or year has") from exc
    if first is None or series.first() is None:  # the second with its own COUNT / UNTIL
        raise RecurrenceError("the rule gives no occurrence within five years of the start")
    return series


def _utc(moment: datetime, fold: int = 0) -> datetime:
    """An occurrence as a UTC instant; a wall time in a DST gap is the jump after it, and
    one a fall-back night repeats is the first of the two, or the second with ``fold=1``."""
    later = moment.replace(fold=1)
    if fold and (later.utcoffset() or timedelta(0)) < (moment.utcoffset() or timedelta(0)):
        return later.astimezone(UTC)  # repeated: the offset after the change is smaller
    return wall_instant(moment.replace(fold=0))


def _probe(series: Series) -> datetime | None:
    """The rule's first occurrence within ``PROBE_WINDOW`` of the start, its own COUNT and
    UNTIL left out, in bounded time (see ``PROBE_YEARS``)."""
    local = series.start.astimezone(zone(series.timezone)).replace(tzinfo=None)
    moved = local.replace(year=local.year + _calendar_shift(local.year))
    text = ";".join(p for p in series.rule.split(";") if not p.startswith(("COUNT=", "UNTIL=")))
    parsed = rrulestr(text, dtstart=moved)
    if not isinstance(parsed, rrule):
        raise RecurrenceError("give one RRULE")
    # a daily rule that never matches walked every day to 9999: up to 300 years of them
    # from a start near a century year (2100 is no leap year, nor is 9700 where it moves)
    found: datetime | None = _by_year(parsed, moved).after(moved, inc=True)
    if found is None or found > moved + PROBE_WINDOW:
        return None
    return found


# dateutil walks a rule period by period from its start, and after its last match (COUNT,
# UNTIL) on to the next day that would match: "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"
# walked 10,000 days to complete an occurrence, and a plain daily series a year of days
# per year of its age. ``_searcher`` gives the same occurrences with far fewer periods.
DAY_PARTS = ("bymonthday", "byyearday", "byweekno", "byweekday")
DATE_PARTS = ("bymonth", *DAY_PARTS)


def _parts(rule: rrule) -> dict[str, Any]:
    """The rule's parts as dateutil resolved them (the defaults it took from the start
    written out), to build the same rule from another start or with another frequency."""
    weekdays = [weekday(d) for d in rule._byweekday or ()]
    weekdays += [weekday(d, n) for d, n in rule._bynweekday or ()]
    return {
        "freq": rule._freq,
        "interval": rule._interval,
        "wkst": rule._wkst,
        "count": rule._count,
        "until": rule._until,
        "bysetpos": rule._bysetpos,
        "bymonth": rule._bymonth,
        "bymonthday": (*rule._bymonthday, *rule._bynmonthday) or None,
        "byyearday": rule._byyearday,
        "byweekno": rule._byweekno,
        "byweekday": weekdays or None,
        "byhour": rule._byhour,
        "byminute": rule._byminute,
        "bysecond": rule._bysecond,
    }


# A daily or weekly rule with a larger INTERVAL is walked as dateutil walks it: its periods
# are then fewer than the yearly rule's candidate days (a year a period costs as much as
# ~36 daily or ~9 weekly periods of a rare rule, measured). dateutil checks UNTIL only on an
# occurrence it makes: a rare rule walked as dateutil walks it goes on past the search's
# stop to its next match in phase (or 9999), up to 91,000 periods for DAILY;INTERVAL=32
# (0.2 s), while the yearly walk stops within a match of the stop (a dense rule with
# INTERVAL=366 walks ~9,000 candidates a year to its next period, 7 ms). Beyond these, a
# rare rule walks at most ~8,000 periods to 9999.
YEARLY_UP_TO = {DAILY: 366, WEEKLY: 52}


@dataclass(frozen=True)
class _Walk:
    """Occurrences as ``rule`` makes them, those on a day ``keep`` refuses left out, and at
    most ``count`` of them (``None``: all)."""

    rule: rrule
    keep: Callable[[date], bool] | None = None
    count: int | None = None

    def __iter__(self) -> Iterator[datetime]:
        made = 0
        if self.count is not None and self.count < 1:
            return
        for occurrence in self.rule:
            if self.keep is None or self.keep(occurrence.date()):
                yield occurrence
                made += 1
                if made == self.count:
                    return

    def since(self, moment: datetime) -> Iterator[datetime]:
        """The occurrences at or after ``moment``, in one pass."""
        return dropwhile(lambda occurrence: occurrence < moment, self)

    def after(self, moment: datetime, inc: bool = False) -> datetime | None:
        """The first occurrence after ``moment`` (at it too with ``inc``), as dateutil's."""
        for occurrence in self.since(moment):
            if occurrence > moment or inc:
                return occurrence
        return None


def _searcher(rule: rrule, target: datetime, stop: datetime | None = None) -> _Walk:
    """``rule``'s occurrences from ``target`` (local, aware) on, cheap to walk.

    The walk starts at the period that holds ``target`` (one of the INTERVAL's, so the phase
    is kept) instead of the series' start; with COUNT only when the occurrences before that
    period can be counted without walking them (``_made_before``). A daily or weekly rule
    with no BYSETPOS and some date part matches exactly the days the yearly rule with the
    same parts matches (dateutil filters each day of a period by the same masks) that lie
    in one of its periods, and walks a year a period instead of a day.
    """
    start = rule._dtstart
    begin = _period_start(rule, start.replace(tzinfo=None), target.replace(tzinfo=None))
    if begin is None:
        return _by_year(rule, start, stop=stop)
    begin = begin.replace(tzinfo=start.tzinfo)
    if rule._count is None:
        return _by_year(rule, begin, stop=stop)
    made = _made_before(rule, begin)
    if made is None:
        return _by_year(rule, start, stop=stop)
    return _by_year(rule, begin, made=made, stop=stop)


def _by_year(rule: rrule, start: datetime, made: int = 0, stop: datetime | None = None) -> _Walk:
    """``rule`` from ``start``, ``made`` of its COUNT used before, not past ``stop``; yearly
    when that matches the same days (see ``_searcher``). COUNT is the walk's, not dateutil's
    (which would count the days left out, and warns of a COUNT with an UNTIL)."""
    parts = _parts(rule)
    if stop is not None:
        parts["until"] = stop if parts["until"] is None else min(parts["until"], stop)
    count = None if parts["count"] is None else parts["count"] - made
    every = parts["interval"]
    if (
        every <= YEARLY_UP_TO.get(parts["freq"], 0)
        and not parts["bysetpos"]
        and any(parts[name] for name in DATE_PARTS)
    ):
        keep = None if every == 1 else _in_a_period(rule)
        if not any(parts[name] for name in DAY_PARTS):
            # a yearly rule with BYMONTH alone takes the start's day of the month
            # (dateutil, after RFC 5545): every day of the month is every weekday
            parts["byweekday"] = tuple(range(7))
        parts.update(freq=YEARLY, interval=1, count=None)
        return _Walk(rrule(dtstart=start, **parts), keep, count)
    parts["count"] = None
    return _Walk(rrule(dtstart=start, **parts), None, count)


def _in_a_period(rule: rrule) -> Callable[[date], bool]:
    """Whether a day lies in one of a daily or weekly rule's periods (every INTERVAL-th day
    or week from the start's)."""
    first, every = rule._dtstart.date(), rule._interval
    if rule._freq == DAILY:
        return lambda day: (day - first).days % every == 0
    week = first - timedelta(days=(first.weekday() - rule._wkst) % 7)
    return lambda day: (day - week).days // 7 % every == 0


def _made_before(rule: rrule, begin: datetime) -> int | None:
    """How many occurrences a daily rule without date parts made before ``begin`` (the
    midnight starting one of its periods), by arithmetic: each period has the same times of
    day, but the start's own lacks those before the start. ``None`` for other rules."""
    parts = _parts(rule)
    if parts["freq"] != DAILY or any(parts[name] for name in DATE_PARTS):
        return None
    parts.update(count=None, until=None)
    start: datetime = rule._dtstart
    every: int = rule._interval
    second = datetime.combine(start.date() + timedelta(days=every), time(), start.tzinfo)

    def on_first_day(moment: datetime) -> int:
        made = rrule(dtstart=moment, **parts)
        return sum(1 for _ in takewhile(lambda o: o.date() == moment.date(), made))

    periods = (begin.date() - start.date()).days // every
    return on_first_day(start) + (periods - 1) * on_first_day(second)


def _period_start(rule: rrule, start: datetime, target: datetime) -> datetime | None:
    """The midnight starting the rule's period that holds ``target`` (naive local times),
    counted in INTERVALs from the start's period; ``None`` while that is the start's own."""
    first, day, every = start.date(), target.date(), rule._interval
    if day <= first:  # a period before the start's, as many days back as INTERVAL is large
        return None
    if rule._freq == DAILY:
        begin = first + timedelta(days=(day - first).days // every * every)
    elif rule._freq == WEEKLY:
        week = first - timedelta(days=(first.weekday() - rule._wkst) % 7)
        begin = week + timedelta(weeks=(day - week).days // 7 // every * every)
    elif rule._freq == MONTHLY:
        months = (day.year - first.year) * 12 + day.month - first.month
        years, month = divmod(first.month - 1 + months // every * every, 12)
        begin = date(first.year + years, month + 1, 1)
    else:
        begin = date(first.year + (day.year - first.year) // every * every, 1, 1)
    return datetime.combine(begin, time()) if begin > first else None


def _year_shape(year: int) -> tuple[int, bool]:
    return date(year, 1, 1).weekday(), calendar.isleap(year)


def _calendar_shift(year: int) -> int:
    """Years to add so that ``PROBE_YEARS`` years from ``year`` have the same calendar
    (weekdays, leap days, week numbers) and end as close to 9999 as that allows; the
    Gregorian calendar repeats every 400 years, so one is found at most 400 years back."""
    shape = [_year_shape(year + i) for i in range(PROBE_YEARS)]
    for target in range(MAXYEAR - PROBE_YEARS + 1, year, -1):
        if [_year_shape(target + i) for i in range(PROBE_YEARS)] == shape:
            return target - year
    return 0
