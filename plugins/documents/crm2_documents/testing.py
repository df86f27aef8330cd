"""The storage-backend contract: every backend passes the same tests, a third party's too.

In your plugin's tests, subclass :class:`BackendContract` and give it a
``backend`` fixture that returns a fresh, empty backend::

    import pytest
    from crm2_documents.testing import BackendContract

    class TestMyBackend(BackendContract):
        large_size = 9 * 1024 * 1024      # optional: what "large" means for you

        @pytest.fixture
        async def backend(self, my_server):
            backend = MyBackend(base_url=my_server.url)
            yield backend
            await backend.aclose()

pytest collects the inherited ``test_*`` methods (async, run by pytest-asyncio
in ``auto`` mode). They check: put / get / range get / exists / delete, that a
failed put stores nothing (and keeps the old object), that overwriting is
whole, a large file streamed in chunks, concurrent writes of one key, and that
keys outside the key rule are refused.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from crm2_documents.storage.base import (
    InvalidKey,
    KeyMissing,
    StorageBackend,
    read_all,
)

MIB = 1024 * 1024


async def chunks_of(data: bytes, size: int = 65_536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


async def pattern(total: int, seed: int = 0, size: int = MIB) -> AsyncIterator[bytes]:
    """``total`` bytes of a repeatable pattern, made as they are sent (never all in memory)."""
    block = hashlib.sha256(str(seed).encode()).digest() * (size // 32)
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece
        await asyncio.sleep(0)


async def digest_of(chunks: AsyncIterator[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    async for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class Boom(Exception):
    """Raised by a client stream midway: the put must store nothing."""


class BackendContract:
    """Inherit it; provide a ``backend`` fixture. See the module docstring."""

    large_size = 9 * MIB
    concurrent_writers = 4

    @pytest.fixture
    def key(self) -> str:
        import uuid

        return f"contract/{uuid.uuid4().hex}/v1"

    async def test_put_then_get_exists_and_delete(self, backend: StorageBackend, key: str) -> None:
        data = b"%PDF-1.4 contract " * 1000
        assert not await backend.exists(key)
        assert await backend.put(key, chunks_of(data, 4096)) == len(data)
        assert await backend.exists(key)
        assert await read_all(backend, key) == data
        assert await backend.delete(key) is True
        assert not await backend.exists(key)
        assert await backend.delete(key) is False  # deleting twice is no error

    async def test_range_get(self, backend: StorageBackend, key: str) -> None:
        data = bytes(range(256)) * 40
        await backend.put(key, chunks_of(data, 1000))
        assert await read_all(backend, key, 10, 20) == data[10:20]
        assert await read_all(backend, key, 1000) == data[1000:]
        assert await read_all(backend, key, 0, len(data)) == data
        assert await read_all(backend, key, len(data) - 1, len(data)) == data[-1:]
        await backend.delete(key)

    async def test_missing_key(self, backend: StorageBackend, key: str) -> None:
        with pytest.raises(KeyMissing):
            await read_all(backend, key)

    async def test_overwrite_is_whole(self, backend: StorageBackend, key: str) -> None:
        await backend.put(key, chunks_of(b"first version " * 100))
        second = b"second " * 10
        await backend.put(key, chunks_of(second))
        assert await read_all(backend, key) == second
        await backend.delete(key)

    async def test_a_failed_put_stores_nothing_and_keeps_the_old(
        self, backend: StorageBackend, key: str
    ) -> None:
        async def breaks() -> AsyncIterator[bytes]:
            yield b"half of a file " * 1000
            raise Boom("the client went away")

        with pytest.raises(Boom):
            await backend.put(key, breaks())
        assert not await backend.exists(key)
        await backend.put(key, chunks_of(b"old"))
        with pytest.raises(Boom):
            await backend.put(key, breaks())
        assert await read_all(backend, key) == b"old"
        await backend.delete(key)

    async def test_large_file_streams(self, backend: StorageBackend, key: str) -> None:
        expected, size = await digest_of(pattern(self.large_size, seed=1))
        assert await backend.put(key, pattern(self.large_size, seed=1)) == self.large_size
        assert await digest_of(backend.open(key)) == (expected, size)
        tail = await read_all(backend, key, self.large_size - 100, self.large_size)
        assert len(tail) == 100
        await backend.delete(key)

    async def test_objects_lists_the_keys_under_a_prefix(self, backend: StorageBackend) -> None:
        """Optional (the orphan sweep uses it): skipped for a backend that cannot list."""
        import uuid
        from datetime import UTC, datetime, timedelta

        folder = f"contract/{uuid.uuid4().hex}"
        keys = {f"{folder}/a/v1", f"{folder}/b/v2"}
        try:
            listed = [o async for o in backend.objects(f"{folder}/")]
        except NotImplementedError:
            pytest.skip("this backend does not list its objects")
        assert listed == []
        for key in keys:
            await backend.put(key, chunks_of(b"listed"))
        await backend.put(f"{folder}x/other", chunks_of(b"not under the prefix"))
        try:
            listed = [o async for o in backend.objects(f"{folder}/")]
            assert {o.key for o in listed} == keys
            now = datetime.now(UTC)
            for found in listed:  # aware, and about now
                assert abs(found.modified_at - now) < timedelta(minutes=10), found
        finally:
            for key in (*keys, f"{folder}x/other"):
                await backend.delete(key)

    async def test_concurrent_writes_of_one_key_leave_one_whole(
        self, backend: StorageBackend, key: str
    ) -> None:
        bodies = [bytes([65 + i]) * (200_000 + i) for i in range(self.concurrent_writers)]
        await asyncio.gather(*(backend.put(key, chunks_of(b, 8192)) for b in bodies))
        assert await read_all(backend, key) in bodies
        await backend.delete(key)

    @pytest.mark.parametrize(
        "bad", ["../escape", "/etc/passwd", "a/../../b", "A/B", "a\\b", "a//b", "", "a/./b"]
    )
    async def test_keys_outside_the_rule_are_refused(
        self, backend: StorageBackend, bad: str
    ) -> None:
        with pytest.raises(InvalidKey):
            await backend.put(bad, chunks_of(b"x"))
        with pytest.raises(InvalidKey):
            await backend.exists(bad)
