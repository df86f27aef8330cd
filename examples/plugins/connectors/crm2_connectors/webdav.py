"""``webdav``: documents' files kept on a WebDAV server (RFC 4918).

Nextcloud, ownCloud, Apache ``mod_dav``, nginx's dav module, WsgiDAV: anything
that speaks ``PUT``/``GET`` with ``Range``/``HEAD``/``DELETE``/``MKCOL``/``MOVE``.

A key ``documents/<id>/<version>`` is the resource of that path under the
configured collection; its parent collections are made on first use. A write
streams (chunked) into ``.incoming/<random>.part`` and is then ``MOVE``d over
the key with ``Overwrite: T``: a reader sees the old file or the new one, never
a part, and a put whose stream fails deletes its temporary file and stores
nothing. ``.incoming`` can never be a key (keys start with a letter or digit).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from crm2_documents.storage.base import (
    CHUNK_SIZE,
    KeyMissing,
    StorageBackend,
    StorageError,
    check_key,
)

INCOMING = ".incoming"
MOVE_ATTEMPTS = 3
PROPFIND_SELF = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>'
)


class WebDavBackend(StorageBackend):
    def __init__(
        self,
        url: str,
        *,
        username: str = "",
        password: str = "",
        timeout: float = 60.0,
        name: str = "webdav",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("the WebDAV URL must be http(s)://host[:port]/path/")
        self.name = name
        self.base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/", "", ""))
        self._auth = httpx.BasicAuth(username, password) if username else None
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._collections: set[str] = set()  # made (or found) already
        self._making = asyncio.Lock()
        self._moving: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- plumbing -------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                auth=self._auth, timeout=httpx.Timeout(self._timeout, connect=10.0)
            )
        return self._client

    def url_of(self, path: str) -> str:
        return self.base + quote(path)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request (every method here is idempotent). A reply that broke the protocol
        (a server that sent a body after a HEAD, a keep-alive closed under us) poisons
        only its connection: the request is sent once more, on a new one."""
        for attempt in (1, 2):
            try:
                return await self._http().request(method, self.url_of(path), **kwargs)
            except httpx.RemoteProtocolError as exc:
                if attempt == 2:
                    raise StorageError(f"webdav {method} {path}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise StorageError(f"webdav {method} {path}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _fail(response: httpx.Response, what: str) -> StorageError:
        return StorageError(f"webdav {what}: {response.status_code} {response.reason_phrase}")

    async def _collection(self, path: str) -> None:
        """``MKCOL`` ``path`` and its parents unless made already (405: it exists)."""
        segments = path.split("/")
        async with self._making:
            for depth in range(1, len(segments) + 1):
                folder = "/".join(segments[:depth])
                if folder in self._collections:
                    continue
                response = await self._request("MKCOL", folder + "/")
                if response.status_code not in (201, 405):
                    raise self._fail(response, f"MKCOL {folder}")
                self._collections.add(folder)

    # -- the backend ----------------------------------------------------------

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        check_key(key)
        if "/" in key:
            await self._collection(key.rsplit("/", 1)[0])
        await self._collection(INCOMING)
        temp = f"{INCOMING}/{uuid.uuid4().hex}.part"
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                yield chunk

        try:
            stored = await self._http().put(self.url_of(temp), content=counted())
            if stored.status_code not in (200, 201, 204):
                raise self._fail(stored, f"PUT {key}")
            await self._move(temp, key)
        except BaseException:
            await self._discard(temp)
            raise
        return size

    async def _move(self, temp: str, key: str) -> None:
        """``MOVE`` the upload over ``key``. Puts of one key take turns here; a MOVE that
        lost a race with another process's (a 5xx, 409 or 423 from the server) is tried
        again: the last one wins whole, as the contract asks."""
        lock = self._moving.get(key)
        if lock is None:
            lock = self._moving[key] = asyncio.Lock()  # gone when no put holds it
        async with lock:
            for attempt in range(MOVE_ATTEMPTS):
                moved = await self._request(
                    "MOVE", temp, headers={"Destination": self.url_of(key), "Overwrite": "T"}
                )
                if moved.status_code in (201, 204):
                    return
                retry = moved.status_code >= 500 or moved.status_code in (409, 423)
                if not retry or attempt == MOVE_ATTEMPTS - 1:
                    raise self._fail(moved, f"MOVE to {key}")
                await asyncio.sleep(0.05 * (attempt + 1))

    async def _discard(self, temp: str) -> None:
        with contextlib.suppress(Exception):  # best effort: a leftover .part is only space
            await asyncio.shield(self._http().delete(self.url_of(temp)))

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        check_key(key)
        if end is not None and end <= start:
            if not await self.exists(key):
                raise KeyMissing(key)
            return
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        request = self._http().build_request("GET", self.url_of(key), headers=headers)
        try:
            response = await self._http().send(request, stream=True)
        except httpx.HTTPError as exc:
            raise StorageError(f"webdav GET {key}: {exc}") from exc
        try:
            if response.status_code == 404:
                raise KeyMissing(key)
            if response.status_code == 416:  # the range starts past the end: nothing
                return
            if response.status_code not in (200, 206):
                raise self._fail(response, f"GET {key}")
            # a server that ignores Range answers 200 with the whole file: cut it here
            skip = start if response.status_code == 200 else 0
            remaining = None if end is None else end - start
            async for chunk in response.aiter_bytes(CHUNK_SIZE):
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                if remaining is not None:
                    chunk = chunk[:remaining]
                    remaining -= len(chunk)
                if chunk:
                    yield chunk
                if remaining == 0:
                    break
        finally:
            await response.aclose()

    async def delete(self, key: str) -> bool:
        check_key(key)
        response = await self._request("DELETE", key)
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 204):
            raise self._fail(response, f"DELETE {key}")
        return True

    async def exists(self, key: str) -> bool:
        check_key(key)
        response = await self._request("HEAD", key)
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise self._fail(response, f"HEAD {key}")
        return True

    async def status(self) -> Mapping[str, Any]:
        response = await self._request(
            "PROPFIND",
            "",
            content=PROPFIND_SELF,
            headers={"Depth": "0", "Content-Type": "application/xml"},
        )
        if response.status_code != 207:
            raise self._fail(response, "PROPFIND")
        return {"url": self.base, "reachable": True}

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
