"""Series and calendars stored in a zone that names no place (before such zones were refused).

No migration can know the place meant by ``localtime`` (the host's zone when it was saved),
so they keep working as stored; calendars list the zone in ``problems`` and refuse other
changes until their admin sets one, and every start-up logs a warning per calendar and per
such zone of series (as notifications does for its rules that can never fire).
"""

from __future__ import annotations

import logging
from typing import Any

from crm2_tasks.calendar import zone_problems
from crm2_tasks.repository import admin as repo

log = logging.getLogger(__name__)
SHOWN = 20  # series ids named per zone: the log stays short however many there are


async def warn_unplaced_zones(context: Any) -> int:
    """Log a warning per calendar and per zone of series that names no place; how many."""
    count = 0
    async with context.session_factory() as session:
        for zone, calendar_id, name in await repo.calendars_by_zone(session):
            for problem in zone_problems(zone):
                count += 1
                log.warning("tasks calendar %r (%s): %s", name, calendar_id, problem)
        for zone, many in await repo.series_zones(session):
            for problem in zone_problems(zone):
                count += 1
                named = await repo.series_in_zone(session, zone, SHOWN)
                log.warning(
                    "%d repeating task series (%s%s): %s; their occurrences follow that zone "
                    "as this host resolves it (end one with DELETE …?scope=following on its "
                    "occurrence and create it again)",
                    many,
                    ", ".join(str(series_id) for series_id in named),
                    ", …" if many > len(named) else "",
                    problem,
                )
    return count
