"""Sign-ins a plugin confirms out of band (``crm2_confirm_login``: a Telegram bot, a push).

Once the password matched, the first plugin that can reach the user is asked to
send the question; the client gets 202 with a secret (stored hashed) and polls
``POST /login/confirm``. The plugin records the user's answer with
:func:`decide_login` — by the challenge's id, which is no secret, but only for the
user the challenge belongs to. pending → approved → used (one token pair), or
denied, or revoked (the user's password, roles or active flag changed meanwhile);
every change is a conditional UPDATE, so a double click or two polls at once never
issue two pairs. Asking publishes ``auth.login.confirmation_requested``,
a refusal ``auth.login.confirmation_denied``, each in the same transaction.
"""

from __future__ import annotations

import inspect
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.auth.authenticator import hash_secret
from crm2_core.auth.errors import LoginConfirmationUnavailable, LoginNotConfirmed
from crm2_core.auth.events import LoginConfirmationDenied, LoginConfirmationRequested
from crm2_core.auth.models import LoginChallenge, User
from crm2_core.auth.schemas import LoginPending
from crm2_core.db import utcnow
from crm2_core.events.envelope import Actor
from crm2_core.events.outbox import publish
from crm2_hookspecs import LoginConfirmation

PENDING, APPROVED, DENIED, USED = "pending", "approved", "denied", "used"
REVOKED = "revoked"


async def ask(
    context: Any, session: AsyncSession, user: User, address: str, ttl_seconds: int
) -> LoginPending | None:
    """Ask a plugin to have the sign-in confirmed; ``None`` when none can for this user."""
    if context is None:
        return None
    now = utcnow()
    login = LoginConfirmation(
        challenge_id=uuid.uuid4(),
        user_id=user.id,
        email=user.email,
        address=address[:64],
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    sent: bool | None = None
    for _plugin, answer in context.plugins.call(
        "crm2_confirm_login", login=login, context=context, session=session
    ):
        if sent is not None:  # decided already: a later plugin's coroutine is not run
            if inspect.iscoroutine(answer):
                answer.close()
            continue
        sent = await answer if inspect.isawaitable(answer) else answer
    if sent is None:
        return None
    if not sent:
        raise LoginConfirmationUnavailable(
            "this account confirms sign-ins out of band and the request could not be sent; "
            "try again in a moment"
        )
    secret = secrets.token_urlsafe(32)
    session.add(
        LoginChallenge(
            id=login.challenge_id,
            secret_hash=hash_secret(secret),
            user_id=user.id,
            address=login.address,
            created_at=now,
            expires_at=login.expires_at,
        )
    )
    requested = LoginConfirmationRequested(
        user_id=user.id,
        challenge_id=login.challenge_id,
        address=login.address,
        expires_at=login.expires_at,
    )
    publish(session, requested, subject=user.id)
    await session.flush()
    return LoginPending(confirmation_token=secret, expires_at=login.expires_at)


async def decide_login(
    session: AsyncSession,
    challenge_id: uuid.UUID,
    user_id: uuid.UUID,
    approve: bool,
    now: datetime | None = None,
) -> bool:
    """Record ``user_id``'s answer to a waiting sign-in; ``False`` when it is not theirs,
    already answered or expired. The caller's transaction commits it."""
    now = now or utcnow()
    result = await session.execute(
        update(LoginChallenge)
        .where(
            col(LoginChallenge.id) == challenge_id,
            col(LoginChallenge.user_id) == user_id,
            col(LoginChallenge.status) == PENDING,
            col(LoginChallenge.expires_at) > now,
        )
        .values(status=APPROVED if approve else DENIED, decided_at=now)
    )
    decided = bool(getattr(result, "rowcount", 0) == 1)
    if decided and not approve:
        denied = LoginConfirmationDenied(user_id=user_id, challenge_id=challenge_id)
        publish(session, denied, subject=user_id, actor=Actor(kind="user", id=str(user_id)))
    return decided


async def redeem(session: AsyncSession, secret: str) -> LoginChallenge | LoginPending:
    """The approved challenge, spent now; a still waiting one as ``LoginPending``; else 401."""
    now = utcnow()
    row = (
        await session.execute(
            select(LoginChallenge).where(col(LoginChallenge.secret_hash) == hash_secret(secret))
        )
    ).scalar_one_or_none()
    if row is None:
        raise LoginNotConfirmed("unknown confirmation token")
    if row.status == DENIED:
        raise LoginNotConfirmed("the user refused this sign-in")
    if row.status == REVOKED:
        raise LoginNotConfirmed("the account changed since this sign-in began; sign in again")
    if row.status == PENDING:
        if row.expires_at <= now:
            raise LoginNotConfirmed("the sign-in was not confirmed in time; sign in again")
        return LoginPending(confirmation_token=secret, expires_at=row.expires_at)
    spent = await session.execute(
        update(LoginChallenge)
        .where(col(LoginChallenge.id) == row.id, col(LoginChallenge.status) == APPROVED)
        .values(status=USED)
    )
    if getattr(spent, "rowcount", 0) != 1:
        raise LoginNotConfirmed("this sign-in was already used")
    return row


async def revoke_for_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """End ``user_id``'s sign-ins not yet redeemed: their password was checked against
    credentials that no longer stand (a reset, a deactivation, new roles)."""
    await session.execute(
        update(LoginChallenge)
        .where(
            col(LoginChallenge.user_id) == user_id,
            col(LoginChallenge.status).in_((PENDING, APPROVED)),
        )
        .values(status=REVOKED)
    )
