"""Redis: ``BGSAVE`` and a copy of the RDB file when this process can read it, else a
logical dump of the keys under crm2's prefix (``DUMP`` + TTL, put back by ``RESTORE``).

**RDB** (``CRM2_BACKUP_REDIS_MODE=auto`` when ``CONFIG GET dir`` / ``dbfilename``
answer, that directory is readable here and a ``redis-server`` program is
installed; ``rdb`` insists): ``BGSAVE``, wait for it, copy the file. The copy is
the artefact (the whole instance, every database). Its facts — the key count and
an order-free sum of crm2's keys — are read from the copy itself, loaded into a
scratch ``redis-server`` (a unix socket in a temporary folder, no TCP port, no
saving), so they describe exactly what the set holds. A drill loads the
decrypted copy the same way and compares. A restore either writes the RDB file
(``--to file:/path/dump.rdb``: put it in place of a stopped Redis's file) or
loads it in a scratch server and copies crm2's keys under the given prefix into
the live Redis, never overwriting a key.

**Logical** (any Redis crm2 can reach, managed ones included; touches nothing
outside the prefix: no ``FLUSH``, no ``BGSAVE``): JSON lines, a header, then one
``{"k", "t", "v"}`` per key (key, TTL in ms or 0, the ``DUMP`` payload; bytes in
base64).

Which one a set holds is read from the artefact (an RDB starts with ``REDIS``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from crm2_backup.errors import BadTargetAddress, TargetFailed
from crm2_backup.targets.base import compare, write_new_file

FORMAT = "crm2-redis-1"
BATCH = 500
DRILL_INFIX = "backup-drill:"
RDB_MAGIC = b"REDIS"
MODES = ("auto", "rdb", "logical")
log = logging.getLogger("crm2.backup")


def _escape(prefix: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix)


class RedisTarget:
    """The keys crm2 keeps in Redis (login throttles, idempotency, stream positions …)."""

    name = "redis"
    extension = ".redis"  # an RDB file or JSON lines: see the module's docstring

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        mode: str = "auto",
        redis_server: str = "redis-server",
        timeout: float = 3600.0,
    ) -> None:
        if not prefix:
            raise BadTargetAddress("the Redis target needs a key prefix (CRM2_REDIS_PREFIX)")
        if mode not in MODES:
            raise BadTargetAddress(f"CRM2_BACKUP_REDIS_MODE must be one of {MODES}, not {mode!r}")
        self.url = url
        self.prefix = prefix
        self.mode = mode
        self.redis_server = redis_server
        self.timeout = timeout

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
                    if payload is None or ttl == -2:
                        # expired or deleted meanwhile (after its DUMP too: PTTL -2, which
                        # dumped as TTL 0 would restore as a key that never expires)
                        continue
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
            rdb = await self._rdb_file(client)
            if rdb is not None:
                await self._bgsave(client)
                await asyncio.to_thread(shutil.copyfile, rdb, path)
                facts = await self._rdb_facts(path)
                size = path.stat().st_size  # noqa: ASYNC240 - one stat
                return {"mode": "rdb", "rdb_bytes": size, **facts}
            return {"mode": "logical", **await self._dump_into(client, path, self.prefix)}
        except RedisError as exc:
            raise TargetFailed(f"redis: {exc}") from exc
        finally:
            await client.aclose()

    async def _rdb_file(self, client: Redis) -> Path | None:
        """The server's RDB file when the RDB way is chosen and possible here, else ``None``."""
        if self.mode == "logical":
            return None
        why = ""
        try:
            folder = (await client.config_get("dir")).get("dir")
            name = (await client.config_get("dbfilename")).get("dbfilename")
        except ResponseError as exc:  # CONFIG disabled or renamed (managed Redis)
            folder = name = None
            why = f"CONFIG GET refused: {exc}"
        if folder and name:
            if isinstance(folder, bytes) or isinstance(name, bytes):
                folder, name = os.fsdecode(folder), os.fsdecode(name)
            if not os.access(folder, os.R_OK | os.X_OK):
                why = f"its directory {folder} is not readable by this process"
            elif shutil.which(self.redis_server) is None:
                why = f"no {self.redis_server} program here to load and check the copy"
            else:
                return Path(folder) / name
        if self.mode == "rdb":
            raise TargetFailed(f"redis: CRM2_BACKUP_REDIS_MODE=rdb, but {why or 'no RDB file'}")
        log.info("backup: redis RDB not reachable (%s): a logical dump instead", why)
        return None

    async def _bgsave(self, client: Redis) -> None:
        """A fresh RDB: ``BGSAVE`` (after any save already running) and wait for it.

        The server marks the save in progress before it answers ``BGSAVE``, so the
        save is over when ``rdb_bgsave_in_progress`` is 0 again.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                await client.bgsave()
                break
            except ResponseError as exc:  # a save (or AOF rewrite) is running: wait for it
                if "in progress" not in str(exc) or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)
        while (await client.info("persistence")).get("rdb_bgsave_in_progress"):
            if loop.time() > deadline:
                raise TargetFailed("redis: BGSAVE did not finish within the time limit")
            await asyncio.sleep(0.05)
        if (await client.info("persistence")).get("rdb_last_bgsave_status") != "ok":
            raise TargetFailed("redis: BGSAVE failed (rdb_last_bgsave_status is not ok)")

    @contextlib.asynccontextmanager
    async def _scratch_server(self, rdb: Path) -> AsyncIterator[Redis]:
        """A private ``redis-server`` that loaded ``rdb``: unix socket only, never saves."""
        with tempfile.TemporaryDirectory(prefix="crm2-redis-") as folder:
            if _same_fs(rdb, folder):
                os.link(rdb, Path(folder) / "dump.rdb")
            else:
                await asyncio.to_thread(shutil.copyfile, rdb, Path(folder) / "dump.rdb")
            socket = Path(folder) / "redis.sock"
            process = await asyncio.create_subprocess_exec(
                self.redis_server,
                "--port", "0",
                "--unixsocket", str(socket),
                "--unixsocketperm", "700",
                "--dir", folder,
                "--dbfilename", "dump.rdb",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--loglevel", "warning",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            client = Redis(unix_socket_path=str(socket))
            try:
                await self._ready(process, client, socket)
                yield client
            finally:
                await client.aclose()
                if process.returncode is None:
                    process.terminate()
                    try:
                        await asyncio.wait_for(process.wait(), 10)
                    except TimeoutError:
                        process.kill()
                        await process.wait()

    async def _ready(self, process: Any, client: Redis, socket: Path) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(self.timeout, 300.0)
        while True:
            if process.returncode is not None:
                err = (await process.stderr.read()).decode(errors="replace")[-500:]
                raise TargetFailed(f"redis: the scratch redis-server could not load the RDB: {err}")
            if socket.exists():  # noqa: ASYNC240 - one stat
                try:
                    if await client.ping():
                        return
                except RedisError:  # LOADING, or not accepting yet
                    pass
            if loop.time() > deadline:
                raise TargetFailed("redis: the scratch redis-server did not start in time")
            await asyncio.sleep(0.02)

    async def _rdb_facts(self, rdb: Path) -> dict[str, Any]:
        """Key count and sum of crm2's keys as the RDB holds them (a scratch server reads it)."""
        async with self._scratch_server(rdb) as scratch:
            found = await self._dump_into(scratch, rdb.with_suffix(".facts"), self.prefix)
            found["dbsize"] = int(await scratch.dbsize())
        rdb.with_suffix(".facts").unlink(missing_ok=True)
        return found

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        if not to:
            raise BadTargetAddress("give the key prefix (or file:/path/dump.rdb) to restore to")
        if _is_rdb(path):
            return await self._restore_rdb(path, to, dry_run)
        if to.startswith("file:"):
            raise BadTargetAddress(
                "this set holds a logical Redis dump: restore it to a key prefix"
            )
        return await self._restore_lines(path, to, dry_run)

    async def _restore_rdb(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        if to.startswith("file:"):
            out = Path(to.removeprefix("file:"))
            if out.exists():  # noqa: ASYNC240 - one stat
                raise BadTargetAddress(f"{out} exists: restore into a new file")
            if not out.parent.is_dir():
                raise BadTargetAddress(f"no directory {out.parent}")
            if not dry_run:

                def write(into: Path) -> None:
                    shutil.copyfile(path, into)

                await asyncio.to_thread(write_new_file, out, write)
            size = path.stat().st_size  # noqa: ASYNC240 - one stat
            return {"rdb_file": str(out), "bytes": size, "dry_run": dry_run}
        lines = path.with_suffix(".lines")
        try:
            async with self._scratch_server(path) as scratch:
                await self._dump_into(scratch, lines, self.prefix)
            return {**await self._restore_lines(lines, to, dry_run), "from": "rdb"}
        finally:
            lines.unlink(missing_ok=True)

    async def _restore_lines(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        restored = skipped = 0
        client = self._client()

        def failed(why: str) -> TargetFailed:
            # earlier batches are written and stay: say so, and how many, rather than a
            # bare error over a half-restored prefix
            return TargetFailed(
                f"{why}; {restored} keys were restored under {to!r} before the failure and "
                f"are left there ({skipped} existed and were kept)",
                restored=restored,
                skipped_existing=skipped,
                prefix=to,
            )

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
                        r, s, error = _count(await pipe.execute(raise_on_error=False))
                        restored, skipped, pending = restored + r, skipped + s, 0
                        if error:
                            raise failed(error)
                if pending:
                    r, s, error = _count(await pipe.execute(raise_on_error=False))
                    restored, skipped = restored + r, skipped + s
                    if error:
                        raise failed(error)
        except RedisError as exc:
            raise failed(f"redis: {exc}") from exc
        finally:
            await client.aclose()
        done = "would_restore" if dry_run else "restored"
        return {done: restored, "skipped_existing": skipped, "prefix": to}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        if _is_rdb(path):
            # the copy loaded into a scratch server of its own: the live Redis is not touched
            found = await self._rdb_facts(path)
            compare(self.name, {k: facts[k] for k in ("keys", "sum", "dbsize")}, found)
            return {"mode": "rdb", "keys": found["keys"], "dbsize": found["dbsize"]}
        scratch = f"{self.prefix}{DRILL_INFIX}{uuid.uuid4().hex}:"
        client = self._client()
        try:
            await self._restore_lines(path, scratch, False)
            found = await self._dump_into(client, path.with_suffix(".drill"), scratch)
            compare(self.name, {k: facts[k] for k in ("keys", "sum")}, found)
            return {"keys": found["keys"]}
        finally:
            path.with_suffix(".drill").unlink(missing_ok=True)
            async for keys in self._keys(client, scratch):
                await client.unlink(*keys)
            await client.aclose()


def _is_rdb(path: Path) -> bool:
    with path.open("rb") as head:
        return head.read(len(RDB_MAGIC)) == RDB_MAGIC


def _same_fs(path: Path, folder: str) -> bool:
    return os.stat(path).st_dev == os.stat(folder).st_dev


def _count(replies: list[Any]) -> tuple[int, int, str]:
    """Keys restored, keys kept because they existed, and why the others failed (or "")."""
    restored = sum(1 for r in replies if not isinstance(r, Exception))
    busy = sum(1 for r in replies if isinstance(r, ResponseError) and "BUSYKEY" in str(r))
    failed = sum(1 for r in replies if isinstance(r, Exception)) - busy
    if not failed:
        return restored, busy, ""
    first = next(r for r in replies if isinstance(r, Exception) and "BUSYKEY" not in str(r))
    return restored, busy, f"redis RESTORE failed for {failed} keys: {first}"
