"""Request rate limits per principal (or client IP when anonymous): GCRA, on Redis when set.

GCRA (the generic cell rate algorithm) keeps one number per key, the theoretical
arrival time (TAT) of the next request: each request pushes it ``interval`` further;
a request is refused while TAT would run more than ``burst`` intervals ahead of now.
That is a token bucket of ``burst`` requests refilled at ``per_minute`` — smooth, with
no window edges to burst across — in one Redis round trip (a Lua script using Redis'
own clock, so every crm2 process shares one limit whatever its clock says).

Refused requests get 429 problem+json with ``Retry-After``; every answer carries
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (draft IETF
RateLimit header fields). Health probes are never limited.

When Redis does not answer (down, or slower than ``REDIS_TIMEOUT``) the Redis limiter
counts in this process instead, as it would without Redis, until its back-off ends and
Redis is tried again: an outage of a shared counter neither stops the whole API (a 503
on every request) nor lifts the limit. The outage is logged when it starts and ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm2_core.context import AUTHENTICATOR
from crm2_core.errors import Crm2Error, TooManyRequests, whole_seconds
from crm2_core.http.middleware import send_problem
from crm2_core.observability.metrics import record_rate_limited
from crm2_core.redis_guard import RedisGuard, RedisUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from crm2_core.context import AppContext

# probes and the Prometheus scraper: polled by machines, on a schedule of their own
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int  # requests that could be made right now
    retry_after_ms: int  # when refused: until the next one is allowed
    reset_ms: int  # until the bucket is full again


class RateLimiter(Protocol):
    limit: int  # the burst: requests a full bucket allows at once

    async def hit(self, key: str) -> Decision: ...


class Gcra:
    """The arithmetic, shared by both stores (times in milliseconds)."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self.interval = 60_000 / per_minute
        self.tolerance = self.interval * burst

    def decide(self, now: float, tat: float | None) -> tuple[Decision, float | None]:
        """The decision and the new TAT to store (None: store nothing)."""
        tat = max(tat if tat is not None else now, now)
        new_tat = tat + self.interval
        if new_tat - self.tolerance > now:
            retry = new_tat - self.tolerance - now
            return Decision(False, 0, math.ceil(retry), math.ceil(tat - now)), None
        remaining = int((now + self.tolerance - new_tat) // self.interval)
        return Decision(True, remaining, 0, math.ceil(new_tat - now)), new_tat


class MemoryRateLimiter:
    """GCRA in this process only: each process enforces the limit on its own."""

    MAX_KEYS = 100_000

    def __init__(self, per_minute: int, burst: int) -> None:
        self.gcra = Gcra(per_minute, burst)
        self.limit = burst
        self._tat: dict[str, float] = {}

    async def hit(self, key: str) -> Decision:
        now = time.monotonic() * 1000
        decision, new_tat = self.gcra.decide(now, self._tat.get(key))
        if new_tat is not None:
            if len(self._tat) >= self.MAX_KEYS and key not in self._tat:
                self._tat = {k: t for k, t in self._tat.items() if t > now}
            self._tat[key] = new_tat
        return decision


class RedisRateLimiter:
    """GCRA in Redis: one EVALSHA per request, the key expiring when the bucket is full."""

    # KEYS[1] = bucket; ARGV = interval_ms, tolerance_ms. Returns {allowed, tat, now}.
    _SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - tolerance > now then
  return {0, tostring(tat), tostring(now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
return {1, tostring(new_tat), tostring(now)}
"""

    def __init__(self, redis: Redis, prefix: str, per_minute: int, burst: int) -> None:
        self.gcra = Gcra(per_minute, burst)
        self.limit = burst
        self._redis = redis
        self._prefix = prefix + "ratelimit:"
        self._script = redis.register_script(self._SCRIPT)
        self.guard = RedisGuard("request rate limit (counted per process meanwhile)")
        self.fallback = MemoryRateLimiter(per_minute, burst)

    async def hit(self, key: str) -> Decision:
        if self.guard.backing_off():
            return await self.fallback.hit(key)
        name = self._prefix + hashlib.sha256(key.encode()).hexdigest()[:32]
        try:
            allowed, tat_text, now_text = await self.guard.call(
                lambda: self._script(keys=[name], args=[self.gcra.interval, self.gcra.tolerance])
            )
        except RedisUnavailable:
            return await self.fallback.hit(key)
        tat, now = float(tat_text), float(now_text)
        if allowed:
            remaining = int((now + self.gcra.tolerance - tat) // self.gcra.interval)
            return Decision(True, remaining, 0, math.ceil(tat - now))
        retry = tat + self.gcra.interval - self.gcra.tolerance - now
        return Decision(False, 0, math.ceil(retry), math.ceil(tat - now))


def build_rate_limiter(settings: Any, redis: Redis | None) -> RateLimiter | None:
    if not settings.rate_limit_per_minute:
        return None
    burst = settings.rate_limit_burst or settings.rate_limit_per_minute
    if redis is not None:
        return RedisRateLimiter(redis, settings.redis_prefix, settings.rate_limit_per_minute, burst)
    return MemoryRateLimiter(settings.rate_limit_per_minute, burst)


class RateLimitMiddleware:
    """Counts every HTTP request against its principal's bucket (the client IP's when
    the request carries no valid credential); 429 once the bucket is empty."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, context: AppContext) -> None:
        self.app = app
        self.limiter = limiter
        self.context = context

    async def _key(self, scope: Scope) -> str:
        authenticator = self.context.find(AUTHENTICATOR)
        principal = None
        if authenticator is not None:
            # A bad credential counts against the client IP (the route answers 401).
            # The principal is cached on the scope: the route's own dependency reuses it.
            with contextlib.suppress(Crm2Error):
                principal = await authenticator.from_scope(scope)
        if principal is not None:
            return f"{principal.kind}:{principal.id}"
        client = scope.get("client")
        return f"ip:{client[0] if client else 'unknown'}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.hit(await self._key(scope))
        headers = [
            (b"ratelimit-limit", str(self.limiter.limit).encode()),
            (b"ratelimit-remaining", str(decision.remaining).encode()),
            (b"ratelimit-reset", str(max(0, math.ceil(decision.reset_ms / 1000))).encode()),
        ]
        if not decision.allowed:
            record_rate_limited(self.context)
            retry_after = whole_seconds(decision.retry_after_ms / 1000)
            await send_problem(
                send,
                429,
                TooManyRequests.slug,
                TooManyRequests.title,
                f"rate limit reached; retry in {retry_after} s",
                scope.get("state", {}).get("request_id"),
                [*headers, (b"retry-after", str(retry_after).encode())],
                instance=scope.get("path"),
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
