"""Waiting is not failing: an event that cannot be applied *yet* is not a handler fault.

A handler applies the events of one subject in log order, so an event whose
predecessor is still pending for that handler (or whose own position the relay has
not committed yet) must wait. That wait is bounded by something that happens
anyway: the predecessor ends applied or dead-lettered (a later event is then held
behind that dead letter, see ``handlers.HeldBehindDeadLetter``), and the relay
commits or rolls back. So a wait never spends the handler's ``max_retries`` and
never makes a dead letter on its own: brokers count waits apart from failures
and retry them with the handler's backoff, capped lower than a failure's.
"""

from __future__ import annotations

import logging
from typing import Protocol

# A waiting event looks again at least this often, whatever the handler's
# max_backoff_seconds (meant for failures: an outage that may last minutes). A
# predecessor that took long is usually about to finish.
MAX_WAIT_SECONDS = 2.0
# A wait this many looks long (about a minute at the cap) is worth a warning, then
# again every as many: an earlier event that never arrives (its message lost) would
# otherwise hold the subject's later events without a sound.
LONG_WAIT_EVERY = 30

log = logging.getLogger(__name__)


class Waiting(Exception):
    """The event cannot be applied yet; try again later. Not a failure."""


class _Backoff(Protocol):
    @property
    def min_backoff_seconds(self) -> float: ...

    @property
    def max_backoff_seconds(self) -> float: ...


def wait_seconds(spec: _Backoff, waits: int) -> float:
    """How long to wait before looking again, after ``waits`` earlier waits."""
    cap = min(spec.max_backoff_seconds, MAX_WAIT_SECONDS)
    # 2**waits overflows a float after ~1000 waits: the cap is reached long before
    delay = spec.min_backoff_seconds * (2 ** min(waits, 32))
    return float(min(delay, cap))


def note_wait(handler_id: str, event_id: object, waits: int) -> None:
    """Warn about an event that has waited ``waits`` times (every ``LONG_WAIT_EVERY``)."""
    if waits and waits % LONG_WAIT_EVERY == 0:
        log.warning(
            "handler %s: event %s has waited %d times for an earlier event of its subject",
            handler_id,
            event_id,
            waits,
        )
