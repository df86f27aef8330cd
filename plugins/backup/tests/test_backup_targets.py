"""The built-in targets against this machine's services, on scratch prefixes and vhosts only.

Each round trip writes a sentinel, dumps, restores elsewhere and drills; the
scratch places are gone afterwards. Consul is a fake HTTP server on 127.0.0.1
speaking ``GET`` / ``PUT /v1/snapshot``.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import threading
from collections.abc import Iterator
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
        target = RedisTarget(url, prefix)
        facts = await target.dump(tmp_path / "r.jsonl")
        assert facts["keys"] == 3

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


async def test_a_redis_drill_that_differs_fails(
    crm2_redis_url: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = crm2_redis_url
    client = Redis.from_url(url)
    try:
        await client.set(f"{prefix}k", "v")
    finally:
        await client.aclose()
    target = RedisTarget(url, prefix)
    facts = dict(await target.dump(tmp_path / "r.jsonl"))

    with pytest.raises(errors.DrillMismatch, match="keys"):
        await target.drill(tmp_path / "r.jsonl", {**facts, "keys": 2})
    assert await _keys(url, prefix) == [f"{prefix}k".encode()]


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
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def consul() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeConsul)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeConsul.restored, FakeConsul.tokens = [], []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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
