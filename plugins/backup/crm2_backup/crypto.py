"""Artefact encryption: AES-256-GCM in chunks, so memory stays flat whatever the size.

File layout (all integers big-endian)::

    header   b"CRM2BK1\\0" | key id (8 bytes) | nonce prefix (8 bytes) | chunk size (4 bytes)
    chunk*   length of the sealed chunk (4 bytes) | AES-GCM(chunk) (ciphertext + 16-byte tag)

Each chunk's nonce is the random prefix and the chunk's index (4 bytes); its
associated data is the header, the index and a last-chunk flag. So a chunk
moved, dropped, repeated or cut off at the end fails to open, as does a flipped
byte anywhere, and the wrong key is named as such (the key id is the first 8
bytes of SHA-256 of the key; the key itself is never written or logged).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CRM2BK1\0"
HEADER = struct.Struct(">8s8s8sI")
LENGTH = struct.Struct(">I")
TAG_BYTES = 16
KEY_BYTES = 32


class DecryptError(Exception):
    """The artefact does not open: wrong key, or changed, truncated or reordered bytes."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise ValueError("the backup key is not base64") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"the backup key must be {KEY_BYTES} bytes, it is {len(key)}")
    return key


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:8]


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">I?", index, last)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _chunks(source: BinaryIO, size: int) -> Iterator[tuple[bytes, bool]]:
    """``(chunk, is_last)``; reads one chunk ahead so the last one is known."""
    current = source.read(size)
    while True:
        following = source.read(size) if len(current) == size else b""
        yield current, not following
        if not following:
            return
        current = following


def encrypt_file(key: bytes, source: Path, target: Path, chunk_size: int) -> tuple[int, str]:
    """Encrypt ``source`` into ``target``; returns the target's size and SHA-256."""
    aead = AESGCM(key)
    prefix = os.urandom(8)
    header = HEADER.pack(MAGIC, key_id(key), prefix, chunk_size)
    digest = hashlib.sha256(header)
    written = len(header)
    with source.open("rb") as plain, target.open("wb") as out:
        out.write(header)
        for index, (chunk, last) in enumerate(_chunks(plain, chunk_size)):
            if index >= 2**32 - 1:
                raise ValueError("artefact too large for one key and nonce prefix")
            sealed = aead.encrypt(_nonce(prefix, index), chunk, _aad(header, index, last))
            frame = LENGTH.pack(len(sealed)) + sealed
            out.write(frame)
            digest.update(frame)
            written += len(frame)
        out.flush()
        os.fsync(out.fileno())
    return written, digest.hexdigest()


def decrypt_file(key: bytes, source: Path, target: Path | None) -> tuple[int, str]:
    """Open ``source`` into ``target`` (``None``: check only); returns plaintext size and SHA-256.

    Raises :class:`DecryptError` on any change, truncation or the wrong key.
    """
    aead = AESGCM(key)
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as sealed_file:
        header = sealed_file.read(HEADER.size)
        if len(header) != HEADER.size:
            raise DecryptError("not a crm2 backup artefact (short header)")
        magic, kid, prefix, chunk_size = HEADER.unpack(header)
        if magic != MAGIC:
            raise DecryptError("not a crm2 backup artefact (bad magic)")
        if kid != key_id(key):
            raise DecryptError("the artefact was encrypted with another key")
        out = target.open("wb") if target is not None else None
        try:
            index = 0
            while True:
                length_bytes = sealed_file.read(LENGTH.size)
                if not length_bytes:
                    raise DecryptError("the artefact is truncated (no last chunk)")
                (length,) = LENGTH.unpack(length_bytes)
                if length > chunk_size + TAG_BYTES or length < TAG_BYTES:
                    raise DecryptError(f"chunk {index} has an impossible length")
                sealed = sealed_file.read(length)
                if len(sealed) != length:
                    raise DecryptError(f"chunk {index} is truncated")
                last = sealed_file.peek(1)[:1] == b"" if hasattr(sealed_file, "peek") else False
                try:
                    chunk = aead.decrypt(_nonce(prefix, index), sealed, _aad(header, index, last))
                except InvalidTag:
                    raise DecryptError(f"chunk {index} does not authenticate") from None
                digest.update(chunk)
                size += len(chunk)
                if out is not None:
                    out.write(chunk)
                if last:
                    return size, digest.hexdigest()
                index += 1
        finally:
            if out is not None:
                out.close()


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()
