"""Redis: a logical dump of the keys under crm2's prefix (``DUMP`` + TTL), put back by ``RESTORE``.

It works against any Redis crm2 can reach, managed ones included, and touches
nothing outside the prefix: no ``FLUSH``, no ``BGSAVE``. The artefact is JSON
lines: a header, then one ``{"k", "t", "v"}`` per key (key, TTL in ms or 0,
the ``DUMP`` payload; bytes in base64).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from crm2_backup.errors import BadTargetAddress, TargetFailed
from crm2_backup.targets.base import compare

FORMAT = "crm2-redis-1"
BATCH = 500
DRILL_INFIX = "backup-drill:"


def _escape(prefix: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix)


class RedisTarget:
    """The keys crm2 keeps in Redis (login throttles, idempotency, stream positions …)."""

    name = "redis"
    extension = ".jsonl"

    def __init__(self, url: str, prefix: str) -> None:
        if not prefix:
            raise BadTargetAddress("the Redis target needs a key prefix (CRM2_REDIS_PREFIX)")
        self.url = url
        self.prefix = prefix

    def _client(self) -> Redis:
        return Redis.from_url(self.url)

    async def _keys(self, client: Redis, prefix: str) -> AsyncIterator[list[bytes]]:
        batch: list[bytes] = []
        drills = (self.prefix + DRILL_INFIX).encode()
        async for key in client.scan_iter(match=_escape(prefix) + "*", count=BATCH):
            if prefix == self.prefix and key.startswith(drills):
                continue  # a drill's scratch copy is not crm2's data
            batch.append(key)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _dump_into(self, client: Redis, path: Path, prefix: str) -> dict[str, Any]:
        total = 0  # sum of per-key hashes mod 2**256: the same whatever order SCAN gives
        count = 0
        with path.open("w", encoding="ascii") as out:
            out.write(json.dumps({"format": FORMAT, "prefix": prefix}) + "\n")
            async for keys in self._keys(client, prefix):
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.dump(key)
                    pipe.pttl(key)
                replies = await pipe.execute()
                for i, key in enumerate(keys):
                    payload, ttl = replies[2 * i], replies[2 * i + 1]
                    if payload is None:
                        continue  # expired or deleted meanwhile
                    suffix = key[len(prefix.encode()) :]
                    one = hashlib.sha256(suffix + b"\0" + payload).digest()
                    total = (total + int.from_bytes(one, "big")) % (1 << 256)
                    line = {
                        "k": base64.b64encode(suffix).decode(),
                        "t": max(int(ttl), 0),
                        "v": base64.b64encode(payload).decode(),
                    }
                    out.write(json.dumps(line) + "\n")
                    count += 1
        return {"keys": count, "sum": f"{total:064x}"}

    async def dump(self, path: Path) -> Mapping[str, Any]:
        client = self._client()
        try:
            return await self._dump_into(client, path, self.prefix)
        except RedisError as exc:
            raise TargetFailed(f"redis: {exc}") from exc
        finally:
            await client.aclose()

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        if not to:
            raise BadTargetAddress("give the key prefix to restore under")
        restored = skipped = 0
        client = self._client()
        try:
            with path.open("r", encoding="ascii") as lines:
                header = json.loads(lines.readline() or "{}")
                if header.get("format") != FORMAT:
                    raise TargetFailed("not a crm2 Redis dump")
                pipe = client.pipeline(transaction=False)
                pending = 0
                for line in lines:
                    item = json.loads(line)
                    key = to.encode() + base64.b64decode(item["k"])
                    if dry_run:
                        restored += 1
                        continue
                    pipe.restore(key, int(item["t"]), base64.b64decode(item["v"]))
                    pending += 1
                    if pending >= BATCH:
                        r, s = _count(await pipe.execute(raise_on_error=False))
                        restored, skipped, pending = restored + r, skipped + s, 0
                if pending:
                    r, s = _count(await pipe.execute(raise_on_error=False))
                    restored, skipped = restored + r, skipped + s
        except RedisError as exc:
            raise TargetFailed(f"redis: {exc}") from exc
        finally:
            await client.aclose()
        done = "would_restore" if dry_run else "restored"
        return {done: restored, "skipped_existing": skipped, "prefix": to}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        scratch = f"{self.prefix}{DRILL_INFIX}{uuid.uuid4().hex}:"
        client = self._client()
        try:
            await self.restore(path, scratch, False)
            found = await self._dump_into(client, path.with_suffix(".drill"), scratch)
            compare(self.name, facts, found)
            return {"keys": found["keys"]}
        finally:
            path.with_suffix(".drill").unlink(missing_ok=True)
            async for keys in self._keys(client, scratch):
                await client.unlink(*keys)
            await client.aclose()


def _count(replies: list[Any]) -> tuple[int, int]:
    restored = sum(1 for r in replies if not isinstance(r, Exception))
    busy = sum(1 for r in replies if isinstance(r, ResponseError) and "BUSYKEY" in str(r))
    failed = sum(1 for r in replies if isinstance(r, Exception)) - busy
    if failed:
        first = next(r for r in replies if isinstance(r, Exception) and "BUSYKEY" not in str(r))
        raise TargetFailed(f"redis RESTORE failed for {failed} keys: {first}")
    return restored, busy
