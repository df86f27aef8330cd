"""Login throttling per account and per IP: Redis when configured, in-process otherwise.

Each attempt takes a slot *before* the password is checked, atomically, so
that concurrent guesses cannot overshoot the limit; a successful login gives
the account's slots back and returns its own slot to the IP's count (the IP
limit counts failures, not a busy office signing in).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import TYPE_CHECKING, Protocol

from crm2_core.auth.errors import LoginThrottleUnavailable
from crm2_core.redis_guard import RedisGuard, RedisUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis


class LoginThrottle(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> int:
        """Count one attempt; return 0 when it may proceed, else seconds until the window ends."""
        ...

    async def reset(self, key: str) -> None:
        """Forget every attempt counted under ``key``."""
        ...

    async def release(self, key: str) -> None:
        """Give back one slot taken by ``hit`` (the attempt turned out to succeed)."""
        ...


class MemoryThrottle:
    """Fixed-window counters in this process, bounded in size."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, limit: int, window_seconds: int) -> int:
        now = time.monotonic()
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            if len(self._windows) >= self.MAX_KEYS:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
            count, ends = 0, now + window_seconds
        if count >= limit:
            return int(ends - now) + 1
        self._windows[key] = (count + 1, ends)
        return 0

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    async def release(self, key: str) -> None:
        count, ends = self._windows.get(key, (0, 0.0))
        if count > 0 and ends > time.monotonic():
            self._windows[key] = (count - 1, ends)


class RedisThrottle:
    """The same fixed window in Redis, shared by every crm2 process."""

    # Decrement only a live, positive counter: never create a key without a TTL.
    _RELEASE = (
        "local v = redis.call('GET', KEYS[1]) "
        "if v and tonumber(v) > 0 then return redis.call('DECR', KEYS[1]) end return 0"
    )

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "login:"
        self.guard = RedisGuard("login throttle (sign-ins are refused with 503 meanwhile)")

    def _key(self, key: str) -> str:
        return self._prefix + hashlib.sha256(key.encode()).hexdigest()[:32]

    async def hit(self, key: str, limit: int, window_seconds: int) -> int:
        name = self._key(key)

        async def count() -> list[int]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, window_seconds, nx=True)
                pipe.ttl(name)
                return await pipe.execute()

        try:
            hits, _, ttl = await self.guard.call(count)
        except RedisUnavailable as exc:
            raise LoginThrottleUnavailable(exc.retry_after) from exc
        if int(hits) > limit:
            return max(int(ttl), 1)
        return 0

    async def reset(self, key: str) -> None:
        try:
            await self.guard.call(lambda: self._redis.delete(self._key(key)))
        except RedisUnavailable as exc:
            raise LoginThrottleUnavailable(exc.retry_after) from exc

    async def release(self, key: str) -> None:
        # Best effort: the attempt was counted and its password was right. A slot not
        # given back only lasts until the window ends; refusing a good sign-in for it
        # would not make guessing any harder.
        with contextlib.suppress(RedisUnavailable):
            await self.guard.call(lambda: self._redis.eval(self._RELEASE, 1, self._key(key)))
