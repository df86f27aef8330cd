"""Artefact encryption: round trip, and every kind of damage fails loudly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from crm2_backup import crypto


def _files(tmp_path: Path, size: int) -> tuple[Path, Path, Path]:
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(size))
    return plain, tmp_path / "sealed", tmp_path / "opened"


@pytest.mark.parametrize("size", [0, 4096, 4096 * 3 + 17])
def test_round_trip_keeps_every_byte(tmp_path: Path, size: int) -> None:
    key = crypto.new_key()
    plain, sealed, opened = _files(tmp_path, size)

    sealed_size, sealed_sha = crypto.encrypt_file(key, plain, sealed, 4096)
    opened_size, opened_sha = crypto.decrypt_file(key, sealed, opened)

    assert opened.read_bytes() == plain.read_bytes()
    assert (opened_size, opened_sha) == (size, crypto.sha256_file(plain))
    assert (sealed_size, sealed_sha) == (sealed.stat().st_size, crypto.sha256_file(sealed))


def test_plaintext_does_not_appear_in_the_artefact(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"the sentinel SENTINEL-42 " * 1000)
    crypto.encrypt_file(crypto.new_key(), plain, tmp_path / "sealed", 4096)

    assert b"SENTINEL-42" not in (tmp_path / "sealed").read_bytes()


def _damaged(tmp_path: Path, damage: str) -> tuple[bytes, Path]:
    key = crypto.new_key()
    plain, sealed, _ = _files(tmp_path, 4096 * 3)
    crypto.encrypt_file(key, plain, sealed, 4096)
    data = bytearray(sealed.read_bytes())
    frame = crypto.LENGTH.size + 4096 + crypto.TAG_BYTES
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":  # the whole last chunk gone
        data = data[: crypto.HEADER.size + 2 * frame]
    elif damage == "swap":  # chunks 0 and 1 exchanged
        start = crypto.HEADER.size
        data[start : start + 2 * frame] = (
            data[start + frame : start + 2 * frame] + data[start : start + frame]
        )
    elif damage == "append":
        data += data[crypto.HEADER.size : crypto.HEADER.size + frame]
    sealed.write_bytes(bytes(data))
    return key, sealed


@pytest.mark.parametrize("damage", ["flip", "truncate", "swap", "append"])
def test_a_damaged_artefact_does_not_open(tmp_path: Path, damage: str) -> None:
    key, sealed = _damaged(tmp_path, damage)

    with pytest.raises(crypto.DecryptError):
        crypto.decrypt_file(key, sealed, None)


def test_the_wrong_key_is_named(tmp_path: Path) -> None:
    plain, sealed, _ = _files(tmp_path, 100)
    crypto.encrypt_file(crypto.new_key(), plain, sealed, 4096)

    with pytest.raises(crypto.DecryptError, match="another key"):
        crypto.decrypt_file(crypto.new_key(), sealed, None)


def test_keys_must_be_32_bytes_of_base64() -> None:
    assert crypto.decode_key(crypto.encode_key(b"k" * 32)) == b"k" * 32
    with pytest.raises(ValueError, match="32 bytes"):
        crypto.decode_key(crypto.encode_key(b"short"))
    with pytest.raises(ValueError, match="base64"):
        crypto.decode_key("not base64 !")


def test_processes_creating_the_key_file_at_once_all_use_the_one_written(tmp_path: Path) -> None:
    """Two first backups at once (a worker and ``crm2 backup run``): one key file is made,
    and neither fails on the other's half-written file nor encrypts with a key of its own."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from crm2_backup.config import BackupSettings
    from crm2_backup.service.keys import load_key

    settings = BackupSettings(key_file=str(tmp_path / "new.key"), key=None)
    start = Barrier(8)

    def first_backup(_: int) -> bytes:
        start.wait()
        return load_key(settings, create=True)

    for _round in range(20):
        (tmp_path / "new.key").unlink(missing_ok=True)
        with ThreadPoolExecutor(8) as pool:
            keys = list(pool.map(first_backup, range(8)))
        assert len(set(keys)) == 1
        assert crypto.decode_key((tmp_path / "new.key").read_text()) == keys[0]
