"""A minimal RFC 5545 writer for the per-user task feed: one VEVENT per task with a due time.

Calendar applications show VEVENTs everywhere (VTODO support is patchy), so a
task is a 15-minute event at its due time. Text is escaped (``\\``, ``;``,
``,``, newlines), other control characters are left out, and lines are folded at 75
octets, as the RFC asks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PRODID = "-//crm2//tasks//EN"
EVENT_LENGTH = timedelta(minutes=15)
LAST_INSTANT = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FeedItem:
    uid: str
    title: str
    description: str
    due_at: datetime
    updated_at: datetime
    done: bool
    url: str = ""


# RFC 5545's TEXT holds no CONTROL character but HTAB (line breaks are escaped as \n): a
# task's title may carry any other (a rule fills it from an event), and one of them makes a
# client refuse the whole feed, so they are left out.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def escape(text: str) -> str:
    return (
        _CONTROL.sub("", text)
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space."""
    raw = line.encode()
    if len(raw) <= 75:
        return line
    parts: list[str] = []
    current = b""
    for char in line:
        encoded = char.encode()
        limit = 75 if not parts else 74  # continuation lines start with a space
        if len(current) + len(encoded) > limit:
            parts.append(current.decode())
            current = b""
        current += encoded
    parts.append(current.decode())
    return "\r\n ".join(parts)


def stamp(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}{utc:%m%dT%H%M%S}Z"  # %Y drops a small year's leading zeros


def end_of(due_at: datetime) -> datetime:
    """The event's end; one due in the last minutes of year 9999 (a stored row from before
    due_at was bounded) ends at the last instant instead of failing the whole feed."""
    return due_at + EVENT_LENGTH if due_at <= LAST_INSTANT - EVENT_LENGTH else LAST_INSTANT


def calendar(name: str, items: Iterable[FeedItem], now: datetime) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{escape(name)}",
    ]
    for item in items:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{item.uid}",
            f"DTSTAMP:{stamp(now)}",
            f"LAST-MODIFIED:{stamp(item.updated_at)}",
            f"DTSTART:{stamp(item.due_at)}",
            f"DTEND:{stamp(end_of(item.due_at))}",
            f"SUMMARY:{escape(('✓ ' if item.done else '') + item.title)}",
        ]
        if item.description:
            lines.append(f"DESCRIPTION:{escape(item.description)}")
        if item.url:
            lines.append(f"URL:{item.url}")
        lines += ["TRANSP:TRANSPARENT", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
