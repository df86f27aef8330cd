"""The built-in targets against this machine's services, on scratch prefixes and vhosts only.

Each round trip writes a sentinel, dumps, restores elsewhere and drills; the
scratch places are gone afterwards. Consul is a fake HTTP server on 127.0.0.1
speaking ``GET`` / ``PUT /v1/snapshot``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import shutil
import socket
import tarfile
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from backup_kit import sentinel
from crm2_backup import errors
from crm2_backup.targets.consul import ConsulTarget
from crm2_backup.targets.rabbitmq import RabbitmqTarget, scoped
from crm2_backup.targets.redis import RedisTarget
from redis.asyncio import Redis
from redis.exceptions import RedisError

# -- Redis -------------------------------------------------------------------------------


async def _keys(url: str, prefix: str) -> list[bytes]:
    client = Redis.from_url(url)
    try:
        return sorted([k async for k in client.scan_iter(match=prefix + "*")])
    finally:
        await client.aclose()


async def test_redis_round_trip_keeps_values_and_ttls(
    crm2_redis_url: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = crm2_redis_url
    secret = sentinel()
    client = Redis.from_url(url)
    try:
        await client.set(f"{prefix}login:ada", secret, ex=3600)
        await client.hset(f"{prefix}h", mapping={"a": "1", "b": secret})
        await client.rpush(f"{prefix}l", "x", "y")
        # logical: the machine's shared Redis is never BGSAVEd (its RDB is not ours to touch)
        target = RedisTarget(url, prefix, mode="logical")
        facts = await target.dump(tmp_path / "r.jsonl")
        assert facts["keys"] == 3 and facts["mode"] == "logical"

        figures = await target.drill(tmp_path / "r.jsonl", facts)
        assert figures == {"keys": 3}
        assert len(await _keys(url, prefix)) == 3  # the drill's scratch copy is gone

        report = await target.restore(tmp_path / "r.jsonl", f"{prefix}copy:", False)
        assert report["restored"] == 3
        assert await client.get(f"{prefix}copy:login:ada") == secret.encode()
        assert 3500 < await client.ttl(f"{prefix}copy:login:ada") <= 3600
        assert await client.hget(f"{prefix}copy:h", "b") == secret.encode()
        again = await target.restore(tmp_path / "r.jsonl", f"{prefix}copy:", False)
        assert again["skipped_existing"] == 3  # never overwrites
    finally:
        await client.aclose()


class _ExpiresBetweenDumpAndPttl:
    """A Redis client on which every key expires just after its DUMP, before its PTTL (the
    dump's pipeline is no transaction): PTTL answers -2, "no such key"."""

    def __init__(self, real: Redis) -> None:
        self.real = real

    def scan_iter(self, **kwargs: Any) -> Any:
        return self.real.scan_iter(**kwargs)

    def pipeline(self, transaction: bool = False) -> Any:
        real = self.real.pipeline(transaction=transaction)

        class Pipe:
            def dump(self, key: bytes) -> None:
                real.dump(key)

            def pttl(self, key: bytes) -> None:
                real.pttl(key)

            async def execute(self) -> list[Any]:
                replies = await real.execute()
                return [-2 if i % 2 else r for i, r in enumerate(replies)]

        return Pipe()


async def test_a_key_that_expires_during_the_dump_is_not_restored_for_ever(
    crm2_redis_url: tuple[str, str], tmp_path: Path
) -> None:
    """A key gone by its PTTL was dumped with TTL 0, which RESTORE reads as "never
    expires": a lock or a session restored from that set would never go away."""
    url, prefix = crm2_redis_url
    client = Redis.from_url(url)
    try:
        await client.set(f"{prefix}lock:report", "held", px=60_000)
        target = RedisTarget(url, prefix, mode="logical")

        facts = await target._dump_into(
            _ExpiresBetweenDumpAndPttl(client),  # type: ignore[arg-type]
            tmp_path / "r.jsonl",
            prefix,
        )

        assert facts["keys"] == 0, "an expired key was dumped"
        report = await target.restore(tmp_path / "r.jsonl", f"{prefix}copy:", False)
        assert report["restored"] == 0 and await client.exists(f"{prefix}copy:lock:report") == 0
    finally:
        await client.aclose()


async def test_a_redis_drill_that_differs_fails(
    crm2_redis_url: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = crm2_redis_url
    client = Redis.from_url(url)
    try:
        await client.set(f"{prefix}k", "v")
    finally:
        await client.aclose()
    target = RedisTarget(url, prefix, mode="logical")
    facts = dict(await target.dump(tmp_path / "r.jsonl"))

    with pytest.raises(errors.DrillMismatch, match="keys"):
        await target.drill(tmp_path / "r.jsonl", {**facts, "keys": 2})
    assert await _keys(url, prefix) == [f"{prefix}k".encode()]


async def test_a_failed_redis_restore_says_how_many_keys_it_already_wrote(
    crm2_redis_url: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = crm2_redis_url
    client = Redis.from_url(url)
    try:
        await client.mset({f"{prefix}k{i}": f"v{i}" for i in range(700)})  # two batches
        target = RedisTarget(url, prefix, mode="logical")
        dump = tmp_path / "r.jsonl"
        await target.dump(dump)
        await client.set(f"{prefix}copy:k0", "there already")
        # last, a key this server refuses to RESTORE (as a newer Redis's encoding would be)
        bad = {"k": base64.b64encode(b"zz").decode(), "t": 0, "v": base64.b64encode(b"no").decode()}
        with dump.open("a") as out:
            out.write(json.dumps(bad) + "\n")

        with pytest.raises(errors.TargetFailed) as caught:
            await target.restore(dump, f"{prefix}copy:", False)

        written = await _keys(url, f"{prefix}copy:")
        assert len(written) == 700  # 699 restored, k0 kept: nothing removed
        assert "699 keys were restored" in caught.value.detail
        assert "1 existed and were kept" in caught.value.detail
        assert caught.value.extensions == {
            "restored": 699,
            "skipped_existing": 1,
            "prefix": f"{prefix}copy:",
        }
    finally:
        await client.aclose()


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A redis-server of this test's own (127.0.0.1, a free port, a temp dir): BGSAVE is ours."""
    folder = tmp_path / "redis-data"
    folder.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
        "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    client = Redis.from_url(url)
                    try:
                        if await client.ping():
                            break
                    finally:
                        await client.aclose()
                except RedisError:
                    await asyncio.sleep(0.02)
        yield url, folder
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
async def test_redis_rdb_round_trip_through_bgsave(
    own_redis: tuple[str, Path], tmp_path: Path
) -> None:
    url, folder = own_redis
    prefix = "crm2test:"
    secret = sentinel()
    client = Redis.from_url(url)
    try:
        await client.set(f"{prefix}login:ada", secret, ex=3600)
        await client.rpush(f"{prefix}l", "x", "y")
        await client.set("someone-else:k", "not crm2's")  # in the RDB, never restored
        target = RedisTarget(url, prefix, mode="auto")
        artefact = tmp_path / "r.redis"

        facts = await target.dump(artefact)

        assert facts["mode"] == "rdb" and facts["keys"] == 2 and facts["dbsize"] == 3
        assert (folder / "dump.rdb").is_file()  # BGSAVE wrote it; the artefact is a copy
        assert artefact.read_bytes().startswith(b"REDIS")
        assert await target.drill(artefact, facts) == {"mode": "rdb", "keys": 2, "dbsize": 3}
        with pytest.raises(errors.DrillMismatch, match="sum"):
            await target.drill(artefact, {**facts, "sum": "0" * 64})

        report = await target.restore(artefact, f"{prefix}copy:", False)
        assert report["restored"] == 2 and report["from"] == "rdb"
        assert await client.get(f"{prefix}copy:login:ada") == secret.encode()
        assert 3500 < await client.ttl(f"{prefix}copy:login:ada") <= 3600
        assert await client.get(f"{prefix}copy:someone-else:k") is None
        rdb = tmp_path / "restored.rdb"
        assert (await target.restore(artefact, f"file:{rdb}", False))["bytes"] > 0
        assert rdb.read_bytes() == artefact.read_bytes()
        with pytest.raises(errors.BadTargetAddress, match="exists"):
            await target.restore(artefact, f"file:{rdb}", False)
    finally:
        await client.aclose()


async def test_two_rdb_restores_into_one_new_file_one_wins_the_other_is_refused(
    tmp_path: Path,
) -> None:
    """``--to file:…`` (no Redis is touched): the file appears whole, once."""
    artefact = tmp_path / "r.redis"
    artefact.write_bytes(b"REDIS0011" + bytes(range(256)) * 40_000)
    target = RedisTarget("redis://127.0.0.1:1/0", "crm2test:")
    out = tmp_path / "dump.rdb"

    results = await asyncio.gather(
        *(target.restore(artefact, f"file:{out}", False) for _ in range(2)),
        return_exceptions=True,
    )

    [won] = [r for r in results if isinstance(r, dict)]
    [refused] = [r for r in results if not isinstance(r, dict)]
    assert won["rdb_file"] == str(out)
    assert isinstance(refused, errors.BadTargetAddress) and "exists" in refused.detail
    assert out.read_bytes() == artefact.read_bytes()
    left = sorted(p.name for p in tmp_path.iterdir())  # noqa: ASYNC240
    assert left == ["dump.rdb", "r.redis"]  # no partial copy beside it


async def test_redis_without_a_readable_rdb_falls_back_or_refuses(
    own_redis: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = own_redis
    missing = RedisTarget(url, "crm2test:", mode="auto", redis_server="no-such-redis-server")
    facts = await missing.dump(tmp_path / "r.redis")
    assert facts["mode"] == "logical"
    strict = RedisTarget(url, "crm2test:", mode="rdb", redis_server="no-such-redis-server")
    with pytest.raises(errors.TargetFailed, match="no-such-redis-server"):
        await strict.dump(tmp_path / "r2.redis")


# -- RabbitMQ ----------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="rabbitmqctl is not installed")
async def test_rabbitmq_definitions_drill_in_a_scratch_vhost(tmp_path: Path) -> None:
    """One real export and drill (rabbitmqctl is ~3 s a call); the rest is the dry run."""
    target = RabbitmqTarget("/")
    facts = await target.dump(tmp_path / "defs.json")
    assert set(facts) == {"queues", "exchanges", "policies", "bindings"}

    figures = await target.drill(tmp_path / "defs.json", facts)

    assert figures["queues"] == len(facts["queues"])
    dry = await target.restore(tmp_path / "defs.json", "crm2_backup_test_never_made", True)
    assert dry["dry_run"] is True and dry["users"] == 0


def test_a_scoped_restore_takes_one_vhost_and_no_users() -> None:
    definitions = {
        "users": [{"name": "guest"}],
        "permissions": [{"user": "guest", "vhost": "/"}],
        "vhosts": [{"name": "/"}, {"name": "other"}],
        "queues": [{"name": "q1", "vhost": "/"}, {"name": "q2", "vhost": "other"}],
        "bindings": [{"source": "x", "vhost": "/"}],
    }

    moved = scoped(definitions, "/", "drill")

    assert moved["vhosts"] == [{"name": "drill"}]
    assert moved["queues"] == [{"name": "q1", "vhost": "drill"}]
    assert moved["bindings"] == [{"source": "x", "vhost": "drill"}]
    assert "users" not in moved and "permissions" not in moved


# -- Consul (a fake server) --------------------------------------------------------------


def _snapshot(kv: bytes) -> bytes:
    files = {"meta.json": b'{"Index": 42}', "state.bin": kv}
    sums = "".join(f"{hashlib.sha256(v).hexdigest()}  {k}\n" for k, v in files.items()).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in [*files.items(), ("SHA256SUMS", sums)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class FakeConsul(BaseHTTPRequestHandler):
    snapshot = b""
    restored: list[bytes] = []
    tokens: list[str | None] = []
    # every PUT: (the server's port, its X-Consul-Token, its Authorization)
    puts: list[tuple[int, str | None, str | None]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        FakeConsul.tokens.append(self.headers.get("X-Consul-Token"))
        if self.path != "/v1/snapshot":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.snapshot)))
        self.end_headers()
        self.wfile.write(self.snapshot)

    def do_PUT(self) -> None:
        if self.path != "/v1/snapshot":
            self.send_error(404)
            return
        FakeConsul.restored.append(self.rfile.read(int(self.headers["Content-Length"])))
        FakeConsul.puts.append(
            (
                self.server.server_address[1],
                self.headers.get("X-Consul-Token"),
                self.headers.get("Authorization"),
            )
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def _consul_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeConsul)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def consul() -> Iterator[str]:
    FakeConsul.restored, FakeConsul.tokens, FakeConsul.puts = [], [], []
    with _consul_server() as url:
        yield url


async def test_consul_snapshot_round_trip(consul: str, tmp_path: Path) -> None:
    secret = sentinel().encode()
    FakeConsul.snapshot = _snapshot(b"kv:config/crm2=" + secret)
    target = ConsulTarget(consul, token="t0ken")

    facts = await target.dump(tmp_path / "c.snap")
    assert facts == {"files": ["meta.json", "state.bin"]}
    assert await target.drill(tmp_path / "c.snap", facts) == {"files": 2}
    await target.restore(tmp_path / "c.snap", "", False)

    assert FakeConsul.restored == [FakeConsul.snapshot]
    assert FakeConsul.tokens == ["t0ken"]


async def test_a_consul_restore_to_something_not_a_url_is_refused_not_sent_to_the_configured_one(
    consul: str, tmp_path: Path
) -> None:
    """``--to consul.staging:8500`` (no scheme) is a typo for another Consul: it must not
    become a PUT of the whole snapshot over the configured (production) one."""
    FakeConsul.snapshot = _snapshot(b"kv:config/crm2=x")
    target = ConsulTarget(consul, token="t0ken")
    await target.dump(tmp_path / "c.snap")

    for to in ("consul.staging:8500", "staging", "ftp://consul:8500"):
        with pytest.raises(errors.BadTargetAddress, match="Consul URL"):
            await target.restore(tmp_path / "c.snap", to, False)
        with pytest.raises(errors.BadTargetAddress, match="Consul URL"):
            await target.restore(tmp_path / "c.snap", to, True)

    assert FakeConsul.restored == []


async def test_a_refused_consul_address_never_repeats_its_password(
    consul: str, tmp_path: Path
) -> None:
    """A mistyped ``--to`` that carries ``user:password@`` is refused without repeating the
    password: the error becomes the restore run's ``error`` (``GET /runs``) and a log line."""
    FakeConsul.snapshot = _snapshot(b"kv:config/crm2=x")
    target = ConsulTarget(consul, token="t0ken")
    await target.dump(tmp_path / "c.snap")

    for to in ("consul://ops:s3cret@staging:8500", "http://ops:s3cret@", "ops:s3cret@staging:8500"):
        with pytest.raises(errors.BadTargetAddress, match="Consul URL") as refused:
            await target.restore(tmp_path / "c.snap", to, False)
        assert "s3cret" not in str(refused.value.detail), refused.value.detail
        assert "staging" in str(refused.value.detail) or to == "http://ops:s3cret@"

    assert FakeConsul.restored == []


async def test_a_consul_restore_into_another_consul_never_gets_the_configured_credentials(
    consul: str, tmp_path: Path
) -> None:
    """The configured token (and the configured URL's user:password) belong to the
    configured Consul: ``--to http://staging:8500`` gets its own token, or none."""
    FakeConsul.snapshot = _snapshot(b"kv:config/crm2=x")
    configured = consul.replace("http://", "http://ops:s3cret@")
    basic = "Basic " + base64.b64encode(b"ops:s3cret").decode()
    port = int(consul.rsplit(":", 1)[1])
    target = ConsulTarget(configured, token="prod-t0ken")
    await target.dump(tmp_path / "c.snap")

    with _consul_server() as other:
        other_port = int(other.rsplit(":", 1)[1])
        await target.restore(tmp_path / "c.snap", other, False)
        own = ConsulTarget(configured, token="prod-t0ken", restore_token="staging-t0ken")
        await own.restore(tmp_path / "c.snap", other + "/", False)
        await ConsulTarget(configured, token="prod-t0ken").restore(
            tmp_path / "c.snap", other.replace("http://", "http://st:pw@"), False
        )
    # the configured Consul, as an empty --to or spelled out: its own credentials
    await own.restore(tmp_path / "c.snap", "", False)
    await own.restore(tmp_path / "c.snap", consul + "/", False)

    assert FakeConsul.puts == [
        (other_port, None, None),
        (other_port, "staging-t0ken", None),
        (other_port, None, "Basic " + base64.b64encode(b"st:pw").decode()),
        (port, "prod-t0ken", basic),
        (port, "prod-t0ken", basic),
    ]


def test_the_consul_restore_token_is_a_setting_of_its_own() -> None:
    from types import SimpleNamespace

    from crm2_backup.config import BackupSettings
    from crm2_backup.targets.builtin import builtin_targets

    ours = BackupSettings(
        consul_url="http://consul:8500",
        consul_token="prod-t0ken",
        consul_restore_token="staging-t0ken",
    )
    core = SimpleNamespace(
        database_url="sqlite+aiosqlite:///x.db",
        redis_url="",
        broker_url="memory://",
        broker_management_url="",
    )
    context = SimpleNamespace(settings=core, plugin_settings=lambda name: ours)
    [consul_target] = [t for t in builtin_targets(context) if t.name == "consul"]
    assert consul_target.headers == {"X-Consul-Token": "prod-t0ken"}
    assert consul_target.restore_headers == {"X-Consul-Token": "staging-t0ken"}


class Redirecting(BaseHTTPRequestHandler):
    """A "Consul" that answers every request with a redirect to ``to``."""

    to = ""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", f"{Redirecting.to}{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()


async def test_a_redirect_never_carries_the_credentials_to_another_host(
    consul: str, tmp_path: Path
) -> None:
    """urllib follows a GET's redirect with every header, the token and Basic auth too:
    a Consul (or a proxy in front of it) answering 302 would hand them to any host."""
    FakeConsul.snapshot = _snapshot(b"kv")
    Redirecting.to = consul
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://ops:s3cret@127.0.0.1:{server.server_address[1]}"
        with pytest.raises(errors.TargetFailed, match="redirect"):
            await ConsulTarget(url, token="prod-t0ken").dump(tmp_path / "c.snap")
    finally:
        server.shutdown()
        server.server_close()

    assert FakeConsul.tokens == []  # the other host was never asked


def _archive(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _sums(files: dict[str, bytes]) -> bytes:
    return "".join(f"{hashlib.sha256(v).hexdigest()}  {k}\n" for k, v in files.items()).encode()


async def test_a_consul_snapshot_with_a_file_not_in_sha256sums_fails(
    consul: str, tmp_path: Path
) -> None:
    """Consul itself refuses a snapshot holding a file it does not know ("unexpected file"):
    a drill must not call such an archive sound because the listed files match."""
    files = {"meta.json": b'{"Index": 42}', "state.bin": b"kv"}
    listed = [*files.items(), ("SHA256SUMS", _sums(files))]
    target = ConsulTarget(consul)
    for extra in (
        [("extra.bin", b"added")],  # a file nobody listed
        [("state.bin", b"kv")],  # a listed name twice: which one is restored?
    ):
        FakeConsul.snapshot = _archive(listed + extra)
        with pytest.raises(errors.TargetFailed, match=r"not listed in SHA256SUMS|twice"):
            await target.dump(tmp_path / "c.snap")
        (tmp_path / "c.snap").write_bytes(FakeConsul.snapshot)
        with pytest.raises(errors.TargetFailed, match=r"not listed in SHA256SUMS|twice"):
            await target.drill(tmp_path / "c.snap", {"files": ["meta.json", "state.bin"]})
    # Consul Enterprise's SHA256SUMS.sealed is never listed in SHA256SUMS; Consul accepts it
    FakeConsul.snapshot = _archive([*listed, ("SHA256SUMS.sealed", b"sealed")])
    facts = await target.dump(tmp_path / "c.snap")
    assert facts == {"files": ["SHA256SUMS.sealed", "meta.json", "state.bin"]}


async def test_a_consul_snapshot_with_a_bad_sum_fails(consul: str, tmp_path: Path) -> None:
    good = _snapshot(b"kv")
    with tarfile.open(fileobj=io.BytesIO(good), mode="r:gz") as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive}  # type: ignore[union-attr]
    members["state.bin"] = b"changed"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    FakeConsul.snapshot = buffer.getvalue()

    with pytest.raises(errors.TargetFailed, match="SHA256SUMS"):
        await ConsulTarget(consul).dump(tmp_path / "c.snap")


async def test_consul_errors_are_target_failures(consul: str, tmp_path: Path) -> None:
    with pytest.raises(errors.TargetFailed, match="404"):
        await ConsulTarget(consul + "/nope").dump(tmp_path / "c.snap")


def test_the_management_url_is_the_cores_and_the_old_name_only_a_fallback() -> None:
    from types import SimpleNamespace

    from crm2_backup.config import BackupSettings
    from crm2_backup.targets.builtin import management_url

    old = BackupSettings(rabbitmq_management_url="http://old:15672")
    core = SimpleNamespace(broker_management_url="http://core:15672")
    assert management_url(core, old) == "http://core:15672"
    assert management_url(SimpleNamespace(broker_management_url=""), old) == "http://old:15672"
    assert management_url(SimpleNamespace(broker_management_url=""), BackupSettings()) == ""
