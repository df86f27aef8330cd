"""Every core call to Redis, bounded in time and with its outages counted.

A Redis that is down (a closed port) or hung (a full network buffer, a paused
server) must not turn a request into a 500 nor hold it for the client's whole
timeout. ``RedisGuard.call`` gives each call ``REDIS_TIMEOUT`` seconds; a failure
raises ``RedisUnavailable`` with ``retry_after``, the seconds to wait before trying
again, growing while the outage lasts (``OUTAGE_RETRY_BASE`` doubling up to
``OUTAGE_RETRY_MAX``). The outage is logged once when it starts and once when Redis
answers again, never once per call. What a failure means is the caller's choice
(the login throttle refuses the sign-in, the rate limiter counts in process).
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
    """One user of Redis (``what``: the words its log lines name it by)."""

    def __init__(
        self,
        what: str,
        timeout: float = REDIS_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.timeout = timeout
        self.clock = clock
        self.failures = 0  # calls in a row Redis did not answer: the outage's length
        self.retry_at = 0.0  # on ``clock``: the back-off of the last failure ends

    def retry_after(self) -> float:
        """Seconds to wait before trying again, growing while the outage lasts."""
        return float(min(OUTAGE_RETRY_MAX, OUTAGE_RETRY_BASE * 2.0 ** max(0, self.failures - 1)))

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
                log.warning(
                    "%s: Redis is not answering (%s: %s)",
                    self.what,
                    type(exc).__name__,
                    exc,
                )
            raise RedisUnavailable(wait) from exc
        if self.failures:
            log.warning("%s: Redis answers again after %d failed calls", self.what, self.failures)
            self.failures = 0
        return answer
