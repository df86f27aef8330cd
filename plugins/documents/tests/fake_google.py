"""A fake Google OAuth 2.0 + Drive v3 server on 127.0.0.1, speaking the subset the gdrive
backend uses: the token endpoint (authorization code with PKCE, refresh), files.list
with the ``q`` forms the backend sends, folder create, resumable upload, ranged
``alt=media`` download and delete. The consent screen is simulated by ``approve`` /
``refuse``, which return the URL Google would redirect the browser to.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import uvicorn
from s3_server import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CLIENT_ID, CLIENT_SECRET = "crm2-test-client", "crm2-test-secret"


@dataclass
class DriveFile:
    id: str
    name: str
    parents: list[str]
    mime: str
    data: bytes = b""


@dataclass
class FakeGoogle:
    base: str = ""
    codes: dict[str, str] = field(default_factory=dict)  # code -> PKCE challenge
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: set[str] = field(default_factory=set)
    files: dict[str, DriveFile] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    token_requests: int = 0
    # Drive answers 200 with a page that is not its JSON (a proxy's or a portal's)
    garbage: bool = False
    # seconds the token endpoint takes to answer (for callbacks that overlap)
    token_delay: float = 0.0

    # -- the consent screen, as a test clicks it -------------------------------------------
    def approve(self, consent_url: str) -> str:
        query = {k: v[0] for k, v in parse_qs(urlparse(consent_url).query).items()}
        assert query["client_id"] == CLIENT_ID and query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = query["code_challenge"]
        return f"{query['redirect_uri']}?{urlencode({'state': query['state'], 'code': code})}"

    def refuse(self, consent_url: str) -> str:
        query = {k: v[0] for k, v in parse_qs(urlparse(consent_url).query).items()}
        params = {"state": query["state"], "error": "access_denied"}
        return f"{query['redirect_uri']}?{urlencode(params)}"

    def revoke_all(self) -> None:
        self.refresh_tokens.clear()
        self.access_tokens.clear()

    def new_id(self) -> str:
        return f"f{next(self.ids):06d}"

    # -- endpoints -------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        form = await request.form()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, 401)
        if form.get("grant_type") == "authorization_code":
            challenge = self.codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", ""))
            digest = hashlib.sha256(verifier.encode()).digest()
            if (
                challenge is None
                or base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge
            ):
                return JSONResponse({"error": "invalid_grant"}, 400)
            refresh = secrets.token_urlsafe(24)
            self.refresh_tokens.add(refresh)
            return JSONResponse({**self._access(), "refresh_token": refresh})
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return JSONResponse({"error": "invalid_grant"}, 400)
            return JSONResponse(self._access())
        return JSONResponse({"error": "unsupported_grant_type"}, 400)

    def _access(self) -> dict[str, Any]:
        token = secrets.token_urlsafe(24)
        self.access_tokens.add(token)
        return {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.access_tokens

    async def files_collection(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": {"code": 401}}, 401)
        if self.garbage:
            return Response("<html>sign in to the network</html>", media_type="text/html")
        if request.method == "POST":
            body = await request.json()
            made = DriveFile(self.new_id(), body["name"], body.get("parents", []), body["mimeType"])
            self.files[made.id] = made
            return JSONResponse({"id": made.id})
        query = request.query_params.get("q", "")
        name = re.search(r"name = '((?:[^'\\]|\\.)*)'", query)
        mime = re.search(r"mimeType (!?=) '([^']*)'", query)
        parent = re.search(r"'([^']*)' in parents", query)
        found = []
        for f in self.files.values():
            if name and f.name != name.group(1):
                continue
            if mime and (f.mime == mime.group(2)) != (mime.group(1) == "="):
                continue
            if parent and parent.group(1) not in f.parents:
                continue
            found.append({"id": f.id})
        return JSONResponse({"files": found})

    async def file_item(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": {"code": 401}}, 401)
        found = self.files.get(request.path_params["file_id"])
        if found is None:
            return JSONResponse({"error": {"code": 404}}, 404)
        if request.method == "DELETE":
            del self.files[found.id]
            return Response(status_code=204)
        data, status, headers = found.data, 200, {}
        ranged = re.match(r"bytes=(\d+)-(\d*)$", request.headers.get("range", ""))
        if ranged:
            start = int(ranged.group(1))
            end = int(ranged.group(2)) + 1 if ranged.group(2) else len(data)
            if start >= len(data):
                return Response(status_code=416)
            data, status = data[start:end], 206
            headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{len(found.data)}"
        return Response(data, status, headers, media_type="application/octet-stream")

    async def upload(self, request: Request) -> Response:
        upload_id = request.query_params.get("upload_id")
        if request.method == "POST":
            if not self._authorized(request):
                return JSONResponse({"error": {"code": 401}}, 401)
            meta = await request.json()
            upload_id = secrets.token_hex(8)
            self.uploads[upload_id] = {"meta": meta, "data": bytearray()}
            location = (
                f"{self.base}/upload/drive/v3/files?uploadType=resumable&upload_id={upload_id}"
            )
            return Response(status_code=200, headers={"Location": location})
        session = self.uploads.get(upload_id or "")
        if session is None:
            return JSONResponse({"error": {"code": 404}}, 404)
        if request.method == "DELETE":
            del self.uploads[upload_id or ""]
            return Response(status_code=499)
        body = await request.body()
        match = re.match(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$", request.headers["content-range"])
        assert match is not None, request.headers["content-range"]
        if match.group(1) is not None:
            assert int(match.group(1)) == len(session["data"]), "chunks out of order"
            session["data"] += body
        total = match.group(3)
        if total == "*" or len(session["data"]) < int(total):
            assert len(body) % 262_144 == 0, "a non-final chunk must be a multiple of 256 KiB"
            return Response(status_code=308)
        meta = session["meta"]
        made = DriveFile(
            self.new_id(), meta["name"], meta.get("parents", []), "application/octet-stream",
            bytes(session["data"]),
        )  # fmt: skip
        self.files[made.id] = made
        del self.uploads[upload_id or ""]
        return JSONResponse({"id": made.id})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/drive/v3/files", self.files_collection, methods=["GET", "POST"]),
                Route("/drive/v3/files/{file_id}", self.file_item, methods=["GET", "DELETE"]),
                Route("/upload/drive/v3/files", self.upload, methods=["POST", "PUT", "DELETE"]),
            ]
        )


@contextmanager
def fake_google() -> Iterator[FakeGoogle]:
    google = FakeGoogle()
    port = free_port()
    google.base = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(
            google.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake Google server did not start"
        time.sleep(0.01)
    try:
        yield google
    finally:
        server.should_exit = True
        thread.join(10)


def gdrive_settings(google: FakeGoogle) -> dict[str, Any]:
    return {
        "gdrive_client_id": CLIENT_ID,
        "gdrive_client_secret": CLIENT_SECRET,
        "gdrive_token_key": "crm2-test-token-key-0123456789abcdef",
        "gdrive_auth_url": f"{google.base}/auth",
        "gdrive_token_url": f"{google.base}/token",
        "gdrive_api_url": google.base,
        "gdrive_redirect_url": "http://crm2.test/api/v1/documents/oauth/gdrive/callback",
        "gdrive_chunk_bytes": 262_144,
    }
