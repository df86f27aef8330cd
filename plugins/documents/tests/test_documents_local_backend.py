"""The local backend passes the backend contract; a crash mid-upload leaves no half file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from crm2_documents.storage.local import INCOMING, LocalBackend
from crm2_documents.testing import BackendContract


class TestLocalBackend(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> LocalBackend:
        return LocalBackend(tmp_path / "root")


def test_a_symlink_cannot_lead_a_key_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "documents").mkdir(parents=True)
    (root / "documents" / "x").symlink_to(tmp_path)
    backend = LocalBackend(root)
    with pytest.raises(ValueError):
        backend.path_of("documents/x/secret")


def test_a_process_killed_during_a_put_leaves_no_visible_half_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from crm2_documents.storage.local import LocalBackend

        async def slow():
            yield b"%PDF-" + b"x" * 100_000
            print("writing", flush=True)
            await asyncio.sleep(60)
            yield b"never"

        asyncio.run(LocalBackend({str(root)!r}).put("documents/d/v", slow()))
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    assert not (root / "documents" / "d" / "v").exists()
    assert len(list((root / INCOMING).glob("*.part"))) == 1  # the temp file, swept later
    assert LocalBackend(root).sweep_incoming(older_than=-1) == 1


async def test_listing_objects_streams_the_tree_without_reading_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The orphan sweep lists every file of the backend: the first ones arrive before the
    whole tree is read (bounded memory), and all of them arrive in the end."""
    root = tmp_path / "root"
    for d in range(40):
        folder = root / "documents" / f"d{d:02d}"
        folder.mkdir(parents=True)
        for v in range(25):
            (folder / f"v{v:02d}").write_bytes(b"x")
    read = 0
    real_scandir = os.scandir

    class Counting:
        def __init__(self, path: Any) -> None:
            self.inner = real_scandir(path)

        def __iter__(self) -> Counting:
            return self

        def __next__(self) -> os.DirEntry[str]:
            nonlocal read
            entry = next(self.inner)
            read += 1
            return entry

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.close()

        def close(self) -> None:
            self.inner.close()

    monkeypatch.setattr(os, "scandir", Counting)
    listing = LocalBackend(root).objects("documents/")
    first = await anext(listing)
    assert first.key.startswith("documents/d")
    assert read < 500, f"{read} directory entries read before the first object"
    rest = [o.key async for o in listing]
    assert len({first.key, *rest}) == 1000


async def test_a_put_makes_its_rename_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is fsynced, renamed over its key, and then its directory is fsynced: without
    that a power cut after the version committed could lose the rename (a row whose file
    is missing)."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    backend = LocalBackend(tmp_path / "root")

    async def chunks() -> Any:
        yield b"%PDF-1.4 durable"

    await backend.put("documents/d/v", chunks())
    folder = str((tmp_path / "root" / "documents" / "d").resolve())
    assert folder in synced, synced
    assert synced.index(folder) > 0  # after the file's own fsync


async def _one(data: bytes) -> Any:
    yield data


async def test_a_delete_removes_the_folders_it_left_empty(tmp_path: Path) -> None:
    """Deleting a file removes its parent folders that became empty, up to (never) the
    root; a folder still holding something stays."""
    root = tmp_path / "root"
    backend = LocalBackend(root)
    await backend.put("documents/aa/bb/one.bin", _one(b"1"))
    await backend.put("documents/aa/two.bin", _one(b"2"))
    assert await backend.delete("documents/aa/bb/one.bin")
    assert not (root / "documents" / "aa" / "bb").exists()
    assert (root / "documents" / "aa" / "two.bin").is_file()
    assert await backend.delete("documents/aa/two.bin")
    assert sorted(p.name for p in root.iterdir()) == [INCOMING]
    assert not await backend.delete("documents/aa/two.bin")  # gone: still no error


async def test_a_put_survives_its_folder_being_removed_by_a_concurrent_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete may remove the (empty) folder between a put's mkdir and its rename: the
    put makes it again rather than failing."""
    import crm2_documents.storage.local as local

    backend = LocalBackend(tmp_path / "root")
    real_replace = os.replace
    raced: list[Path] = []

    def replace_after_a_delete(src: Any, dst: Any) -> None:
        folder = Path(dst).parent
        if not raced and folder.is_dir() and not any(folder.iterdir()):
            raced.append(folder)
            folder.rmdir()  # what the concurrent delete's cleanup does
        real_replace(src, dst)

    monkeypatch.setattr(local.os, "replace", replace_after_a_delete)
    assert await backend.put("documents/cc/dd/three.bin", _one(b"3")) == 1
    assert raced
    assert (tmp_path / "root" / "documents" / "cc" / "dd" / "three.bin").read_bytes() == b"3"
