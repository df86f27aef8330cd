"""Token buckets per user+channel and per bot: atomic on Redis (Lua), in-process without it.

``take(key, rate, burst)`` answers 0.0 when a token was taken, otherwise the
seconds until one is there. Nothing is dropped on a "no": the caller re-queues
the delivery for then. ``refund(key, burst)`` gives back a token taken for a send
that did not happen (another bucket said no).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

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


class Buckets(Protocol):
    async def take(self, key: str, rate: float, burst: int) -> float: ...

    async def refund(self, key: str, burst: int) -> None: ...


@dataclass
class MemoryBuckets:
    """One process's buckets (the embedded default without Redis)."""

    clock: Any = time.monotonic
    state: dict[str, tuple[float, float]] = field(default_factory=dict)

    async def take(self, key: str, rate: float, burst: int) -> float:
        now = float(self.clock())
        tokens, at = self.state.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + max(0.0, now - at) * rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / rate
        self.state[key] = (tokens, now)
        return wait

    async def refund(self, key: str, burst: int) -> None:
        if key in self.state:
            tokens, at = self.state[key]
            self.state[key] = (min(float(burst), tokens + 1), at)


class RedisBuckets:
    """Buckets shared by every process, one Lua call per take."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(TAKE_LUA)
        self._refund = redis.register_script(REFUND_LUA)

    async def take(self, key: str, rate: float, burst: int) -> float:
        answer = await self._script(keys=[f"{self.prefix}{key}"], args=[rate, burst])
        return float(answer.decode() if isinstance(answer, bytes) else answer)

    async def refund(self, key: str, burst: int) -> None:
        await self._refund(keys=[f"{self.prefix}{key}"], args=[burst])


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
    memory = MemoryBuckets()
    context.provide(MemoryBuckets, memory)
    return memory
