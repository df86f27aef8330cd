"""Connecting Google Drive: OAuth 2.0 authorization code with PKCE (RFC 7636).

``start`` makes a one-time ``state`` (stored hashed, valid ten minutes) and a
PKCE verifier (stored encrypted) and returns Google's consent URL. Google sends
the browser back to ``callback`` with ``state`` and ``code`` (or ``error`` when
consent was refused); the state must match, the code is exchanged with the
verifier, and the refresh token is stored encrypted with
``CRM2_DOCUMENTS_GDRIVE_TOKEN_KEY``. Access tokens live in memory only.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import (
    BadRequest,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    acting_user,
    utcnow,
)
from crm2_documents.models import Credential
from crm2_hookspecs import Principal

PROVIDER = "gdrive"
SCOPE = "https://www.googleapis.com/auth/drive.file"
STATE_TTL = timedelta(minutes=10)


class ConsentRefused(Forbidden):
    slug, title = "documents-oauth-consent-refused", "Access to Google Drive was not granted"


class BadState(BadRequest):
    slug, title = "documents-oauth-bad-state", "The OAuth state is unknown, used or expired"


class NotConfigured(NotFound):
    """No gdrive backend in this deployment: its endpoints are as absent as it is."""

    slug, title = "documents-gdrive-not-configured", "The gdrive backend is not configured"


class ExchangeFailed(ServiceUnavailable):
    slug, title = "documents-oauth-exchange-failed", "Google's token endpoint did not answer"


class TokenRevoked(ServiceUnavailable):
    slug, title = "documents-gdrive-revoked", "Google Drive access was revoked: connect again"


class TokenKeyMissing(ServiceUnavailable):
    """The settings refuse a client id without a token key at start-up; a request that
    meets one anyway (settings changed at run time) is this deployment's fault: a 503
    naming the setting, never a 500."""

    slug, title = "documents-gdrive-token-key-missing", "The gdrive backend has no token key"


def cipher(settings: Any) -> Fernet:
    if settings.gdrive_token_key is None:
        raise TokenKeyMissing(
            "set CRM2_DOCUMENTS_GDRIVE_TOKEN_KEY (32+ random characters) to keep the "
            "Drive refresh token encrypted"
        )
    raw = settings.gdrive_token_key.get_secret_value().encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest()))


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _settings(context: Any) -> Any:
    settings = context.plugin_settings("documents")
    if not settings.gdrive_client_id:
        raise NotConfigured("set CRM2_DOCUMENTS_GDRIVE_CLIENT_ID and its secret first")
    return settings


async def _row(session: AsyncSession) -> Credential:
    """The one credential row, made on first use. Two first consents at once both try to
    make it: the one that loses waits for the other's commit and takes its row (a
    savepoint keeps the transaction usable), so the later start replaces the earlier,
    as a new start does, rather than answering a conflict."""
    row = await session.get(Credential, PROVIDER, populate_existing=True)
    if row is not None:
        return row
    try:
        async with session.begin_nested():
            row = Credential(provider=PROVIDER)
            session.add(row)
    except IntegrityError:
        row = await session.get(Credential, PROVIDER, populate_existing=True)
        if row is None:  # made and removed meanwhile: nothing removes it, but be exact
            raise
    return row


async def start(session: AsyncSession, context: Any, principal: Principal) -> tuple[str, str]:
    """The consent URL and its state; a new start replaces an unfinished one."""
    settings = _settings(context)
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    row = await _row(session)
    row.pending_state = _hash(state)
    row.pending_verifier = cipher(settings).encrypt(verifier.encode()).decode()
    row.pending_by = acting_user(principal)  # a user: an API key acts for its creator
    row.pending_until = utcnow() + STATE_TTL
    row.updated_at = utcnow()
    await session.flush()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.gdrive_client_id,
            "redirect_uri": settings.gdrive_redirect_url,
            "scope": SCOPE,
            "access_type": "offline",
            "prompt": "consent",
            "state": state,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    return f"{settings.gdrive_auth_url}?{query}", state


@dataclass(frozen=True)
class _Consent:
    """What ``start`` kept for the consent a state names, taken from the row as it is spent."""

    until: datetime | None
    verifier: str | None  # encrypted
    by: uuid.UUID | None


async def _spend(context: Any, state: str) -> _Consent:
    """Spend the one-time state: a conditional UPDATE (``WHERE pending_state = hash``),
    committed before Google is asked. Of two callbacks with the same state, the second's
    UPDATE waits for the first's and then matches no row: only one reaches Google. (A
    read then a write would let both read the state before either cleared it.) The
    commit also keeps the database's lock (on SQLite: the write lock) off the exchange."""
    async with context.session_factory() as session:
        won = await session.execute(
            update(Credential)
            .where(
                col(Credential.provider) == PROVIDER,
                col(Credential.pending_state) == _hash(state),
            )
            .values(pending_state=None, updated_at=utcnow())
        )
        if not won.rowcount:
            raise BadState("this consent was not started here, or was finished already")
        row = await session.get(Credential, PROVIDER, populate_existing=True)
        if row is None:  # the UPDATE matched it in this transaction: it is there
            raise BadState("this consent was not started here, or was finished already")
        consent = _Consent(row.pending_until, row.pending_verifier, row.pending_by)
        row.pending_verifier = row.pending_until = row.pending_by = None
        await session.commit()
    return consent


# RFC 6749 §4.1.2.1: the error codes an authorization response may carry
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
    }
)


def _refusal(error: str | None) -> str:
    """The 403's detail: fixed text, naming the error only when it is a registered code
    (the query string is the caller's: no text of theirs is repeated in our problem)."""
    if error in OAUTH_ERRORS:
        return f"Google did not grant access ({error}): nothing was stored"
    return "Google did not grant access: nothing was stored"


async def callback(context: Any, state: str, code: str | None, error: str | None) -> None:
    """Check the state (once), exchange the code with the verifier, keep the refresh token."""
    import httpx  # here: imported at the top, it would be on every `crm2 serve`'s start-up

    settings = _settings(context)
    consent = await _spend(context, state)  # spent even when what follows refuses
    until, verifier_enc, by = consent.until, consent.verifier, consent.by
    if until is None or until < utcnow():
        raise BadState("the consent took longer than ten minutes: start again")
    if error is not None or not code:
        raise ConsentRefused(_refusal(error))
    try:
        verifier = cipher(settings).decrypt((verifier_enc or "").encode()).decode()
    except InvalidToken as exc:
        raise BadState("the consent was started with another token key") from exc
    secret = settings.gdrive_client_secret
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            answer = await client.post(
                settings.gdrive_token_url,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "code_verifier": verifier,
                    "redirect_uri": settings.gdrive_redirect_url,
                    "client_id": settings.gdrive_client_id,
                    "client_secret": secret.get_secret_value() if secret else "",
                },
            )
        body = answer.json() if answer.status_code == 200 else {}
    except (httpx.HTTPError, ValueError) as exc:  # unreachable, or not JSON
        raise ExchangeFailed(
            f"Google's token endpoint failed ({type(exc).__name__}): nothing was stored; "
            "connect again"
        ) from exc
    if not isinstance(body, dict) or not body.get("refresh_token"):
        raise ConsentRefused(f"Google refused the code ({answer.status_code})")
    token = str(body["refresh_token"])
    async with context.session_factory() as session:
        row = await _row(session)
        row.refresh_token = cipher(settings).encrypt(token.encode()).decode()
        row.connected_by, row.connected_at, row.revoked_at = by, utcnow(), None
        row.updated_at = utcnow()
        await session.commit()


async def refresh_token(context: Any) -> str:
    """The stored refresh token, decrypted; ``TokenRevoked`` when there is none (any more)."""
    settings = _settings(context)
    async with context.session_factory() as session:
        row = await session.get(Credential, PROVIDER)
    if row is None or row.refresh_token is None:
        raise TokenRevoked("Google Drive is not connected: an admin connects it first")
    try:
        return cipher(settings).decrypt(row.refresh_token.encode()).decode()
    except InvalidToken as exc:
        raise TokenRevoked("the refresh token was encrypted with another key") from exc


async def mark_revoked(context: Any) -> None:
    async with context.session_factory() as session:
        row = await session.get(Credential, PROVIDER)
        if row is not None:
            row.refresh_token, row.revoked_at, row.updated_at = None, utcnow(), utcnow()
            await session.commit()


async def status(context: Any) -> dict[str, Any]:
    async with context.session_factory() as session:
        row = await session.get(Credential, PROVIDER)
    return {
        "connected": bool(row and row.refresh_token),
        "connected_at": row.connected_at.isoformat() if row and row.connected_at else None,
        "revoked_at": row.revoked_at.isoformat() if row and row.revoked_at else None,
    }
