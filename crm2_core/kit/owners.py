"""Who may own a record: one rule for every plugin (the owner check used to drift).

An owner is a core user. The default owner is the caller (or the creator of the
API key); a caller who sees only their own records assigns only to themselves
(403); the owner must be an active user (422).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.auth.models import User
from crm2_core.errors import Forbidden, Unprocessable
from crm2_core.kit.visibility import Visibility, acting_user
from crm2_hookspecs import Principal


class OwnerForbidden(Forbidden):
    slug, title = "owner-forbidden", "You can only assign records to yourself"


class OwnerNotActive(Unprocessable):
    slug, title = "owner-not-active", "The owner must be an active user"


async def is_active_user(session: AsyncSession, user_id: uuid.UUID) -> bool:
    stmt = select(exists().where(User.id == user_id, User.is_active.is_(True)))
    return bool((await session.execute(stmt)).scalar())


async def resolve_owner(
    session: AsyncSession,
    principal: Principal,
    visibility: Visibility,
    requested: uuid.UUID | None,
    *,
    default: uuid.UUID | None = None,
    current: uuid.UUID | None = None,
) -> uuid.UUID:
    """The owner to store: ``requested``, else ``default``, else the acting user.

    ``current`` is the record's owner today: keeping it needs no check.
    """
    owner = requested or default or acting_user(principal)
    if current is not None and owner == current:
        return owner
    if not visibility.allows(owner):
        raise OwnerForbidden("you can only assign records to yourself")
    if not await is_active_user(session, owner):
        raise OwnerNotActive(f"owner {owner} is not an active user")
    return owner


async def user_ids_by_email(session: AsyncSession, emails: Iterable[str]) -> dict[str, uuid.UUID]:
    """Lower-cased e-mail → user id, for the e-mails that are users."""
    wanted = {e.lower() for e in emails}
    if not wanted:
        return {}
    stmt = select(func.lower(User.email), User.id).where(func.lower(User.email).in_(wanted))
    return {email: user_id for email, user_id in (await session.execute(stmt)).all()}


async def user_emails(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """User id → e-mail (for exports)."""
    wanted = set(ids)
    if not wanted:
        return {}
    stmt = select(User.id, User.email).where(User.id.in_(wanted))
    return {user_id: email for user_id, email in (await session.execute(stmt)).all()}


async def resolve_user(
    context: Any, id: str, principal: Principal | None
) -> Mapping[str, Any] | None:
    """The ``auth.user`` entity: id, name and whether active; the e-mail for the system,
    the user themselves and holders of ``auth:users``."""
    try:
        user_id = uuid.UUID(str(id))
    except ValueError:
        return None
    async with context.session_factory() as session:
        user = await session.get(User, user_id)
    if user is None:
        return None
    answer: dict[str, Any] = {
        "kind": "auth.user",
        "id": str(user.id),
        "name": user.full_name or user.email.split("@", 1)[0],
        "is_active": user.is_active,
    }
    if principal is None or principal.id == user.id or principal.has_permission("auth:users"):
        answer["email"] = user.email
    return answer


async def create_user(
    context: Any,
    session: AsyncSession,
    *,
    email: str,
    password: str,
    full_name: str = "",
    roles: Iterable[str] = (),
) -> uuid.UUID:
    """Create a core user through the auth service (seeds and load data sets)."""
    from crm2_core.auth.schemas import UserCreate

    data = UserCreate(email=email, password=password, full_name=full_name, roles=list(roles))
    user = await context.state["auth"].create_user(session, data)
    user_id: uuid.UUID = user.id
    return user_id
