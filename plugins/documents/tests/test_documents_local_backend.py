"""The local backend passes the backend contract; a crash mid-upload leaves no half file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

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
