"""Every core call to Redis, bounded in time and with its outages counted.

A Redis that is down (a closed port) or hung (a full network buffer, a paused
server) must not turn a request into a 500 nor hold it for the client's whole
timeout. ``RedisGuard.call`` gives each call ``REDIS_TIMEOUT`` seconds; a failure
raises ``RedisUnavailable`` with ``retry_after``, the seconds to wait before trying
again, growing while the outage lasts (``retry_base`` doubling up to ``retry_max``:
``OUTAGE_RETRY_BASE`` and ``OUTAGE_RETRY_MAX`` unless the user says otherwise). The
outage is logged once when it starts and once when Redis answers again, never once
per call, on the user's logger. What a failure means is the caller's choice (the
login throttle refuses the sign-in, the rate limiter counts in process, notifications
hold what they would send). Plugins take it from ``crm2_core.api``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_TIMEOUT = 2.0  # seconds for one call: a request must not wait on a hung Redis (a
# loaded host can hold a healthy reply past 1 s, and a false outage backs off 5 s)
OUTAGE_RETRY_BASE = 5.0  # seconds until the first retry after Redis failed, doubling
OUTAGE_RETRY_MAX = 60.0


class RedisUnavailable(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Redis is not answering; retry in {retry_after:g} s")
        self.retry_after = retry_after


class RedisGuard:
    """One user of Redis (``what``: the words its log lines name it by; ``logger``: where
    they go, this module's unless given)."""

    def __init__(
        self,
        what: str,
        timeout: float = REDIS_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        *,
        retry_base: float = OUTAGE_RETRY_BASE,
        retry_max: float = OUTAGE_RETRY_MAX,
        logger: logging.Logger | None = None,
    ) -> None:
        self.what = what
        self.timeout = timeout
        self.clock = clock
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.log = logger or log
        self.failures = 0  # calls in a row Redis did not answer: the outage's length
        self.retry_at = 0.0  # on ``clock``: the back-off of the last failure ends

    def retry_after(self) -> float:
        """Seconds to wait before trying again, growing while the outage lasts."""
        return float(min(self.retry_max, self.retry_base * 2.0 ** max(0, self.failures - 1)))

    def backing_off(self) -> bool:
        """True while the last failure's back-off runs (a caller may skip Redis till then)."""
        return self.failures > 0 and self.clock() < self.retry_at

    async def call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                answer = await call()
        except (RedisError, OSError, TimeoutError) as exc:
            self.failures += 1
            wait = self.retry_after()
            self.retry_at = self.clock() + wait
            if self.failures == 1:
                self.log.warning(
                    "%s: Redis is not answering (%s: %s)",
                    self.what,
                    type(exc).__name__,
                    exc,
                )
            raise RedisUnavailable(wait) from exc
        if self.failures:
            self.log.warning(
                "%s: Redis answers again after %d failed calls", self.what, self.failures
            )
            self.failures = 0
        return answer
