"""Per-subject lanes for a worker's handler runs: a later event of a record waits for
the earlier one running in the same process instead of failing its claim.

A dramatiq worker hands messages to several threads, which all run their coroutine on
one event loop. A burst on one record (a deal moved through three stages) reaches
them together: without a lane, every event after the first fails its claim
(``EarlierPending``), is sent back to the broker with a backoff and comes back tens of
milliseconds to seconds later, once per look. With a lane, it waits here until the
earlier event of its subject that this process is applying has settled, then claims.

A lane only orders what this process already runs; the database still decides. An
event whose predecessor is elsewhere (another worker, the broker's queue, a retry)
claims at once and waits the usual way; so does one that waited ``within`` seconds
(an earlier event's run is bounded by its handler's time limit anyway).

A waiting run holds its worker thread, so at most ``waiters`` runs wait at once (the
worker sets half its threads): a record with a slow handler and a long burst cannot
take every thread from the other records' events. Past that, an event goes to the
database at once, and back to the broker with the usual backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class SubjectLanes:
    """The runs in progress per (handler, subject), each with its event's position."""

    def __init__(self, waiters: int = 4) -> None:
        self.waiters = waiters  # at most this many runs wait at once
        self._running: dict[tuple[str, str], list[tuple[int, asyncio.Future[None]]]] = {}

    def running(self, handler_id: str, subject: str) -> list[int]:
        """Positions of the subject's events the handler runs or holds here (tests)."""
        return [position for position, _ in self._running.get((handler_id, subject), [])]

    def waiting(self) -> int:
        """Runs behind an earlier one of their lane. A settled run leaves its lane at
        once, so the one it held counts as running from then on, before it resumes."""
        count = 0
        for lane in self._running.values():
            first = min(at for at, _ in lane)
            count += sum(1 for at, _ in lane if at > first)
        return count

    @contextlib.asynccontextmanager
    async def turn(
        self, handler_id: str, subject: str, position: int, within: float
    ) -> AsyncIterator[None]:
        """Enter once every earlier event of ``subject`` this process runs for
        ``handler_id`` has settled (or after ``within`` seconds, or at once when
        ``waiters`` runs wait already); the body is the run."""
        key = (handler_id, subject)
        lane = self._running.setdefault(key, [])
        earlier = [done for at, done in lane if at < position]
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (position, settled)
        lane.append(entry)
        try:
            if earlier and self.waiting() <= self.waiters:  # this run counted too
                # a chain: each earlier one waits for its own predecessors first
                await asyncio.wait(earlier, timeout=within)
            yield
        finally:
            lane.remove(entry)
            if not lane:
                del self._running[key]
            settled.set_result(None)
