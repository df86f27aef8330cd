"""The ``gdrive`` backend: files in a Google Drive folder, over Drive REST v3.

One folder (``CRM2_DOCUMENTS_GDRIVE_FOLDER``) holds a folder per key segment:
a folder per linked record (``records/<kind>/<record id>/``) holding a folder per
document, or ``documents/<id>/`` for a document linked to nothing. Each object is
a Drive file named by its key's last segment, found again by name. Uploads are
resumable sessions sent in chunks (``uploadType=resumable``):
a Drive file exists only once its last chunk is accepted, so a failed upload
leaves nothing. An overwrite uploads first and then removes the older files of
that name; concurrent writers agree on which one stays (the newest id order),
so one whole file remains. Access tokens are refreshed from the encrypted
refresh token when they expire; a revoked grant (``invalid_grant``) is recorded
and reported until an admin connects Drive again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from crm2_documents.gdrive import oauth
from crm2_documents.storage.base import KeyMissing, StorageBackend, StorageError, check_key

# httpx is imported where a request is made: at the top it would add a tenth of a second
# of CPU to every `crm2 serve` start-up, which makes none.
if TYPE_CHECKING:
    import httpx

FOLDER = "application/vnd.google-apps.folder"
T = TypeVar("T")


def _read(answer: httpx.Response, what: str, pick: Callable[[Any], T]) -> T:
    """``pick`` applied to the answer's JSON; an answer that is not Drive's JSON (a proxy's
    page, another shape) is the backend failing (``StorageError``), not our error."""
    try:
        return pick(answer.json())
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise StorageError(f"{what}: the answer is not Drive's JSON") from exc


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


class StoredGrant:
    """Where the refresh token comes from: the encrypted ``documents_credential`` row."""

    def __init__(self, context: Any) -> None:
        self.context = context

    async def refresh_token(self) -> str:
        return await oauth.refresh_token(self.context)

    async def revoked(self) -> None:
        await oauth.mark_revoked(self.context)

    async def status(self) -> dict[str, Any]:
        return await oauth.status(self.context)


class GDriveBackend(StorageBackend):
    def __init__(self, grant: Any, settings: Any, name: str = "gdrive") -> None:
        """``grant``: a :class:`StoredGrant` (or any object with its three methods)."""
        self.name = name
        self.grant = grant
        self.settings = settings
        self.api = settings.gdrive_api_url.rstrip("/")
        self.chunk = settings.gdrive_chunk_bytes - settings.gdrive_chunk_bytes % 262_144
        self._client: httpx.AsyncClient | None = None
        self._token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()
        self._folders: dict[str, str] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5))
        return self._client

    # -- auth ------------------------------------------------------------------------------

    async def _access_token(self) -> str:
        import httpx

        async with self._lock:
            if self._token is not None and self._token[1] > time.monotonic() + 30:
                return self._token[0]
            secret = self.settings.gdrive_client_secret
            try:
                answer = await self.client.post(
                    self.settings.gdrive_token_url,
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": await self.grant.refresh_token(),
                        "client_id": self.settings.gdrive_client_id,
                        "client_secret": secret.get_secret_value() if secret else "",
                    },
                )
            except httpx.HTTPError as exc:
                raise StorageError(f"token refresh failed: {type(exc).__name__}") from exc
            try:
                body = answer.json()
                if answer.status_code == 400 and body.get("error") == "invalid_grant":
                    await self.grant.revoked()
                    raise oauth.TokenRevoked("Google Drive revoked the grant: connect it again")
                if answer.status_code != 200:
                    raise StorageError(f"token refresh failed: HTTP {answer.status_code}")
                token, expires_in = str(body["access_token"]), int(body["expires_in"])
            except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not its JSON
                raise StorageError(
                    f"token refresh failed: HTTP {answer.status_code}, an unexpected answer"
                ) from exc
            self._token = (token, time.monotonic() + expires_in)
            return self._token[0]

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        import httpx

        headers = {"Authorization": f"Bearer {await self._access_token()}"}
        headers.update(kwargs.pop("headers", {}))
        try:
            answer = await self.client.request(method, url, headers=headers, **kwargs)
            if answer.status_code == 401:  # expired early: refresh once and retry
                self._token = None
                headers["Authorization"] = f"Bearer {await self._access_token()}"
                answer = await self.client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:  # unreachable, timed out: the contract's StorageError
            raise StorageError(f"Drive {method} failed: {type(exc).__name__}") from exc
        return answer

    # -- names -----------------------------------------------------------------------------

    async def _find(self, name: str, parent: str | None, folder: bool = False) -> list[str]:
        query = f"name = '{_quote(name)}' and trashed = false"
        query += f" and mimeType {'=' if folder else '!='} '{FOLDER}'"
        if parent is not None:
            query += f" and '{_quote(parent)}' in parents"
        answer = await self._request(
            "GET",
            f"{self.api}/drive/v3/files",
            params={"q": query, "fields": "files(id)", "orderBy": "createdTime", "pageSize": 100},
        )
        if answer.status_code != 200:
            raise StorageError(f"Drive list failed: HTTP {answer.status_code}")
        return _read(answer, "Drive list", lambda body: [str(f["id"]) for f in body["files"]])

    async def _folder(self, name: str, parent: str | None, create: bool) -> str | None:
        cache_key = f"{parent}/{name}"
        if cache_key in self._folders:
            return self._folders[cache_key]
        found = await self._find(name, parent, folder=True)
        if not found and not create:
            return None
        if found:
            folder_id = found[0]
        else:
            body: dict[str, Any] = {"name": name, "mimeType": FOLDER}
            if parent is not None:
                body["parents"] = [parent]
            made = await self._request("POST", f"{self.api}/drive/v3/files", json=body)
            if made.status_code not in (200, 201):
                raise StorageError(f"Drive folder create failed: HTTP {made.status_code}")
            folder_id = _read(made, "Drive folder create", lambda body: str(body["id"]))
        self._folders[cache_key] = folder_id
        return folder_id

    async def _place(self, key: str, create: bool) -> tuple[str | None, str]:
        """(the folder holding ``key``'s file, the file's name): a folder per key segment."""
        parts = check_key(key).split("/")
        parent = await self._folder(self.settings.gdrive_folder, None, create)
        for part in parts[:-1]:
            if parent is None:
                break
            parent = await self._folder(part, parent, create)
        return parent, parts[-1]

    async def _files(self, key: str) -> list[str]:
        parent, name = await self._place(key, create=False)
        return [] if parent is None else await self._find(name, parent)

    # -- the contract ----------------------------------------------------------------------

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        import httpx

        parent, name = await self._place(key, create=True)
        started = await self._request(
            "POST",
            f"{self.api}/upload/drive/v3/files",
            params={"uploadType": "resumable"},
            json={"name": name, "parents": [parent]},
        )
        if started.status_code != 200 or "location" not in started.headers:
            raise StorageError(f"Drive upload could not start: HTTP {started.status_code}")
        session = started.headers["location"]
        buffer, sent, size = bytearray(), 0, 0
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) > self.chunk:  # keep one back: the last chunk says the total
                    piece, buffer = bytes(buffer[: self.chunk]), buffer[self.chunk :]
                    await self._send(session, piece, sent, None)
                    sent += len(piece)
            file_id = await self._send(session, bytes(buffer), sent, size)
        except BaseException:
            # cancel the resumable session; Drive drops it after a week anyway
            with contextlib.suppress(httpx.HTTPError):
                await self.client.delete(session)
            raise
        await self._keep_one(parent or "", name, file_id)
        return size

    async def _send(self, session: str, piece: bytes, offset: int, total: int | None) -> str:
        end = offset + len(piece) - 1
        if total is None:
            content_range = f"bytes {offset}-{end}/*"
        elif not piece:
            content_range = f"bytes */{total}"
        else:
            content_range = f"bytes {offset}-{end}/{total}"
        answer = await self._request(
            "PUT", session, content=piece, headers={"Content-Range": content_range}
        )
        if total is None:
            if answer.status_code != 308:
                raise StorageError(f"Drive upload chunk refused: HTTP {answer.status_code}")
            return ""
        if answer.status_code not in (200, 201):
            raise StorageError(f"Drive upload did not complete: HTTP {answer.status_code}")
        return _read(answer, "Drive upload", lambda body: str(body["id"]))

    async def _keep_one(self, parent: str, name: str, file_id: str) -> None:
        """Remove the other files of this name; every writer keeps the same (last) one."""
        found = await self._find(name, parent)
        keep = found[-1] if found else file_id
        for other in found:
            if other != keep:
                await self._request("DELETE", f"{self.api}/drive/v3/files/{other}")

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        import httpx

        found = await self._files(key)
        if not found:
            raise KeyMissing(key)
        if end is not None and end <= start:
            return
        headers = {"Authorization": f"Bearer {await self._access_token()}"}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        url = f"{self.api}/drive/v3/files/{found[-1]}"
        try:
            async with self.client.stream(
                "GET", url, params={"alt": "media"}, headers=headers
            ) as answer:
                if answer.status_code == 404:
                    raise KeyMissing(key)
                if answer.status_code == 416:
                    return
                if answer.status_code not in (200, 206):
                    raise StorageError(f"Drive download failed: HTTP {answer.status_code}")
                async for chunk in answer.aiter_bytes():
                    yield chunk
        except httpx.HTTPError as exc:
            raise StorageError(f"Drive download failed: {type(exc).__name__}") from exc

    async def delete(self, key: str) -> bool:
        found = await self._files(key)
        for file_id in found:
            await self._request("DELETE", f"{self.api}/drive/v3/files/{file_id}")
        return bool(found)

    async def exists(self, key: str) -> bool:
        return bool(await self._files(key))

    async def status(self) -> Mapping[str, Any]:
        state: dict[str, Any] = await self.grant.status()
        if state["connected"]:
            await self._access_token()
        return state

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
