"""``Idempotency-Key`` on POST: one effect per key, the stored response replayed.

Same key and same request → the stored response (``Idempotent-Replayed: true``);
same key, other request → 422; the first still running → 409. Keys are scoped
per principal and kept ``CRM2_IDEMPOTENCY_TTL_SECONDS``. Anonymous requests
(login) are passed through: there is no one to scope a key to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from crm2_core.context import AUTHENTICATOR, AppContext
from crm2_core.db import utcnow
from crm2_core.errors import (
    BadRequest,
    Crm2Error,
    IdempotencyInFlight,
    IdempotencyKeyReused,
)
from crm2_core.http.middleware import ASGIApp, Message, Receive, Scope, Send, header, send_problem
from crm2_core.http.models import IdempotencyRecord
from crm2_hookspecs import Principal

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# A request that died without storing its response frees its key after this.
IN_FLIGHT_TIMEOUT = timedelta(seconds=60)
REPLAYED_HEADERS = {"content-type", "location", "etag"}


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, context: AppContext) -> None:
        self.app = app
        self.context = context
        self._inserts = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        if not _KEY.match(key):
            await send_problem(
                send,
                400,
                BadRequest.slug,
                BadRequest.title,
                "Idempotency-Key must be 1-255 visible ASCII characters",
                request_id,
            )
            return
        principal = await self._principal(scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        owner = f"{principal.kind}:{principal.id}"
        fingerprint = self._fingerprint(scope)
        try:
            stored = await self._claim(owner, key, fingerprint)
        except Crm2Error as exc:
            await send_problem(send, exc.status, exc.slug, exc.title, exc.detail, request_id)
            return
        if stored is not None:
            await self._replay(send, stored)
            return
        await self._run_and_store(scope, receive, send, owner, key)

    async def _principal(self, scope: Scope) -> Principal | None:
        authenticator = self.context.find(AUTHENTICATOR)
        if authenticator is None:
            return None
        try:
            principal: Principal | None = await authenticator.from_scope(scope)
        except Crm2Error:
            return None
        return principal

    @staticmethod
    def _fingerprint(scope: Scope) -> str:
        digest = hashlib.sha256()
        for part in (
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode(),
            header(scope, b"content-type") or "",
        ):
            digest.update(part.encode() + b"\0")
        digest.update(scope.get("state", {}).get("body", b""))
        return digest.hexdigest()

    async def _claim(self, owner: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Insert an in-progress row, or return the finished one to replay."""
        now = utcnow()
        async with self.context.session_factory() as session:
            row = await session.get(IdempotencyRecord, (owner, key))
            if row is not None and row.expires_at <= now:
                await session.delete(row)
                await session.flush()
                row = None
            if row is None:
                session.add(
                    IdempotencyRecord(
                        scope=owner,
                        key=key,
                        fingerprint=fingerprint,
                        state="in_progress",
                        locked_at=now,
                        expires_at=now
                        + timedelta(seconds=self.context.settings.idempotency_ttl_seconds),
                    )
                )
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    raise IdempotencyInFlight(
                        "another request with this Idempotency-Key is running; retry later"
                    ) from None
                await self._maybe_sweep()
                return None
            if row.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for a different request; use a new key"
                )
            if row.state == "done":
                return row
            if row.locked_at > now - IN_FLIGHT_TIMEOUT:
                raise IdempotencyInFlight(
                    "a request with this Idempotency-Key is still running; retry later"
                )
            taken = await session.execute(
                update(IdempotencyRecord)
                .where(
                    col(IdempotencyRecord.scope) == owner,
                    col(IdempotencyRecord.key) == key,
                    col(IdempotencyRecord.locked_at) == row.locked_at,
                )
                .values(locked_at=now)
            )
            await session.commit()
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise IdempotencyInFlight("a request with this Idempotency-Key is still running")
            return None

    async def _maybe_sweep(self) -> None:
        self._inserts += 1
        if self._inserts % 500:
            return
        async with self.context.session_factory() as session:
            await session.execute(
                delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= utcnow())
            )
            await session.commit()

    @staticmethod
    async def _replay(send: Send, row: IdempotencyRecord) -> None:
        headers = [(k.encode(), v.encode()) for k, v in json.loads(row.response_headers or "[]")]
        headers.append((b"idempotent-replayed", b"true"))
        await send(
            {
                "type": "http.response.start",
                "status": row.response_status or 200,
                "headers": headers,
            }
        )
        await send({"type": "http.response.body", "body": row.response_body or b""})

    async def _run_and_store(
        self, scope: Scope, receive: Receive, send: Send, owner: str, key: str
    ) -> None:
        status = 500
        kept_headers: list[tuple[str, str]] = []
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.decode().lower() in REPLAYED_HEADERS:
                        kept_headers.append((name.decode().lower(), value.decode()))
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await self._finish(owner, key, status, kept_headers, bytes(body))

    async def _finish(
        self, owner: str, key: str, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        where = (col(IdempotencyRecord.scope) == owner, col(IdempotencyRecord.key) == key)
        values: dict[str, Any] = {
            "state": "done",
            "response_status": status,
            "response_headers": json.dumps(headers),
            "response_body": body,
        }
        async with self.context.session_factory() as session:
            if status >= 500:
                # A failure changed nothing (the request's transaction rolled
                # back): free the key so the client's retry runs for real.
                await session.execute(delete(IdempotencyRecord).where(*where))
            else:
                await session.execute(update(IdempotencyRecord).where(*where).values(**values))
            await session.commit()
