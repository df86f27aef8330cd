"""Sets dated in the future: a process whose clock ran ahead, or a hand-made row.

``started_at`` orders sets (the latest, retention's periods). A set stamped ahead of
this clock would stay "the latest" until that time comes, and take the newest day's
(week's, month's) retention slot, so that the sets really made last are pruned. One
dated more than :data:`SLACK` ahead is therefore set aside: never the latest (status,
a drill of "the latest"), never counted by retention and never pruned by it, and
named in a warning so that an operator fixes its time or deletes it. Within the slack
(clocks a few seconds or minutes apart) a set counts as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from crm2_core.api import utcnow

log = logging.getLogger("crm2.backup")
SLACK = timedelta(minutes=5)


def trusted_until(now: datetime | None = None) -> datetime:
    """The latest ``started_at`` taken at its word."""
    return (now or utcnow()) + SLACK


def set_aside_future(
    rows: Iterable[Any], now: datetime | None = None
) -> tuple[list[Any], list[Any]]:
    """``rows`` split into (dated up to :func:`trusted_until`, dated later); the later
    ones are logged, one warning each."""
    limit = trusted_until(now)
    trusted: list[Any] = []
    future: list[Any] = []
    for row in rows:
        (future if row.started_at > limit else trusted).append(row)
    for row in future:
        log.warning(
            "backup: set %s is dated %s, in the future (more than %d min ahead of this "
            "clock: a clock that ran ahead, or a hand-made row): not the latest, and "
            "retention neither counts nor prunes it; fix its started_at or delete it",
            row.id,
            row.started_at.isoformat(),
            SLACK.total_seconds() // 60,
        )
    return trusted, future
