"""Token buckets per user+channel and per bot: atomic on Redis (Lua), in-process without it.

``take(key, rate, burst)`` answers 0.0 when a token was taken, otherwise the
seconds until one is there. Nothing is dropped on a "no": the caller re-queues
the delivery for then. ``refund(key, burst)`` gives back a token taken for a send
that did not happen (another bucket said no). ``pause(key, seconds)`` holds a key (a
whole bot, after the service said 429) for ``seconds`` from now, never shortening a
pause already there; ``pause_left(key)`` answers the seconds it still holds (0.0: none).
Both are durations, never a date: on Redis the pause is a key with a TTL, counted
down by Redis's own clock, so workers on machines whose clocks disagree still agree
on when it ends (a date written by one machine and compared by another would end it
early or late by their difference). In process, the deliveries' clock (``clock.now``).

Every call goes through the core's ``RedisGuard``: when Redis does not answer (down, or
slower than the guard's timeout) it raises ``RateLimiterUnavailable``, and nothing the
limiter holds is sent without it (sending past a bot's pause is what Telegram punishes
with longer bans). Its ``seconds`` grow with the outage (the guard's back-off, up to
``OUTAGE_RETRY_MAX`` here: a longer ceiling than the core's, as a held delivery loses
nothing by waiting), and the outage is logged once when it starts and once when Redis
answers again, not once per call.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from crm2_core.api import RedisGuard, RedisUnavailable
from crm2_notifications.errors import RateLimiterUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

OUTAGE_RETRY_MAX = 300.0  # seconds: the back-off's ceiling while Redis stays down

# KEYS[1] the bucket; ARGV rate (tokens/s), burst. The server's clock, so every process
# agrees; one script run is atomic, so concurrent takers never share a token.
TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then tokens = burst; at = now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


# KEYS[1] the bucket; ARGV burst. One token back, never beyond the burst.
REFUND_LUA = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens ~= nil then
  redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(tonumber(ARGV[1]), tokens + 1)))
end
return 0
"""


# KEYS[1] the pause; ARGV its length (ms). Only ever lengthened: an earlier, longer answer
# stands. PTTL is -2 for no key (-1, no expiry, cannot happen: it is always set with PX).
PAUSE_LUA = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
"""


class Buckets(Protocol):
    async def take(self, key: str, rate: float, burst: int) -> float: ...

    async def refund(self, key: str, burst: int) -> None: ...

    async def pause(self, key: str, seconds: float) -> None: ...

    async def pause_left(self, key: str) -> float: ...


MAX_MEMORY_KEYS = 10_000


@dataclass
class MemoryBuckets:
    """One process's buckets (the embedded default without Redis).

    Bounded, as Redis's keys expire: a bucket refilled to its burst is the same as none
    and is dropped, and beyond ``max_keys`` the least recently used go first (one that
    is not full yet then starts full again: a little more than the limit for a user
    idle longest, never unbounded memory per user and channel)."""

    clock: Any = time.monotonic
    # key → (tokens, at, full_at): at ``full_at`` the bucket holds its burst again
    state: OrderedDict[str, tuple[float, float, float]] = field(default_factory=OrderedDict)
    # the pauses' clock: the deliveries' one (``clock.now``), which tests move
    pause_clock: Callable[[], float] = time.time
    pauses: dict[str, float] = field(default_factory=dict)  # key → until, on pause_clock
    max_keys: int = MAX_MEMORY_KEYS

    def _forget(self, now: float) -> None:
        """Drop full buckets from the least recently used end, then any beyond the cap."""
        while self.state:
            oldest = next(iter(self.state))
            if self.state[oldest][2] > now and len(self.state) <= self.max_keys:
                break
            del self.state[oldest]

    async def take(self, key: str, rate: float, burst: int) -> float:
        now = float(self.clock())
        tokens, at, _ = self.state.pop(key, (float(burst), now, now))
        tokens = min(float(burst), tokens + max(0.0, now - at) * rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / rate
        self.state[key] = (tokens, now, now + (burst - tokens) / rate)
        self._forget(now)
        return wait

    async def refund(self, key: str, burst: int) -> None:
        if key in self.state:
            tokens, at, full_at = self.state[key]
            back = min(float(burst), tokens + 1)
            # a token back brings "full" nearer by one token's refill time
            rate_time = (full_at - at) / (burst - tokens) if burst > tokens else 0.0
            self.state[key] = (back, at, full_at - rate_time * (back - tokens))

    async def pause(self, key: str, seconds: float) -> None:
        until = self.pause_clock() + seconds
        self.pauses[key] = max(until, self.pauses.get(key, until))

    async def pause_left(self, key: str) -> float:
        left = self.pauses.get(key, 0.0) - self.pause_clock()
        if left <= 0:
            self.pauses.pop(key, None)  # over: nothing to keep
        return max(0.0, left)


class RedisBuckets:
    """Buckets shared by every process, one Lua call per take."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(TAKE_LUA)
        self._refund = redis.register_script(REFUND_LUA)
        self._pause = redis.register_script(PAUSE_LUA)
        self.guard = RedisGuard(
            "notifications rate limiter (nothing it limits is sent meanwhile)",
            retry_max=OUTAGE_RETRY_MAX,
            logger=log,
        )

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self.guard.call(call)
        except RedisUnavailable as exc:
            raise RateLimiterUnavailable(exc.retry_after) from exc

    async def take(self, key: str, rate: float, burst: int) -> float:
        answer: Any = await self._call(
            lambda: self._script(keys=[f"{self.prefix}{key}"], args=[rate, burst])
        )
        return float(answer.decode() if isinstance(answer, bytes) else answer)

    async def refund(self, key: str, burst: int) -> None:
        await self._call(lambda: self._refund(keys=[f"{self.prefix}{key}"], args=[burst]))

    async def pause(self, key: str, seconds: float) -> None:
        lifetime = max(1, math.ceil(seconds * 1000))
        await self._call(lambda: self._pause(keys=[f"{self.prefix}{key}"], args=[lifetime]))

    async def pause_left(self, key: str) -> float:
        left = int(await self._call(lambda: self.redis.pttl(f"{self.prefix}{key}")))
        return left / 1000.0 if left > 0 else 0.0


def buckets_for(context: Any) -> Buckets:
    """The context's buckets: Redis when configured, else one in-process set per app."""
    found = context.find(RedisBuckets) or context.find(MemoryBuckets)
    if found is not None:
        return found  # type: ignore[no-any-return]
    if context.redis is not None:
        prefix = f"{context.settings.redis_prefix}notifications:rl:"
        redis_buckets = RedisBuckets(context.redis, prefix)
        context.provide(RedisBuckets, redis_buckets)
        return redis_buckets
    from crm2_notifications import clock

    memory = MemoryBuckets(pause_clock=lambda: clock.now(context).timestamp())
    context.provide(MemoryBuckets, memory)
    return memory
