"""Who may own a record: one rule for every plugin (the owner check used to drift).

An owner is a core user. The default owner is the caller (or the creator of the
API key); a caller who sees only their own records assigns only to themselves
(403); the owner must be an active user (422), and, where the plugin names the
permission a record's owner needs (``may_own``, its write permission), one whose
roles grant it (422 ``owner-not-permitted``): a read-only viewer owns nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.auth.models import RolePermission, User, UserRole
from crm2_core.auth.repository import permissions_of_roles, roles_of
from crm2_core.db.direct import execute_in_session
from crm2_core.errors import Forbidden, Unauthorized, Unprocessable
from crm2_core.http.principal import permitted
from crm2_core.kit.visibility import (
    Visibility,
    acting_user,
    permitted_in_session,
    session_application,
)
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext


class OwnerForbidden(Forbidden):
    slug, title = "owner-forbidden", "You can only assign records to yourself"


class OwnerNotActive(Unprocessable):
    slug, title = "owner-not-active", "The owner must be an active user"


class OwnerNotPermitted(Unprocessable):
    slug, title = "owner-not-permitted", "The owner's roles cannot hold these records"


async def is_active_user(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """A read only: before a create's write it goes without ``BEGIN`` (``execute_in_session``)."""
    stmt = select(exists().where(col(User.id) == user_id, col(User.is_active).is_(True)))
    rows = await execute_in_session(session, stmt, reads_only=True)
    return bool(rows[0][0])


def _hooks_may_veto(context: AppContext) -> bool:
    caller = getattr(context.plugins.pm.hook, "crm2_check_permission", None)
    return caller is not None and bool(caller.get_hookimpls())


async def _not_vetoed(
    session: AsyncSession, user_id: uuid.UUID, granted: frozenset[str]
) -> frozenset[str]:
    """``granted`` less what a ``crm2_check_permission`` hook denies the user: two more
    reads (their roles and those roles' permissions, the principal a hook judges),
    only when a plugin implements the hook."""
    # a session of no application raises: hooks asked for must not quietly go unasked
    context = session_application(session)
    if not granted or not _hooks_may_veto(context):
        return granted
    roles = frozenset((await roles_of(session, [user_id]))[user_id])
    grants = await permissions_of_roles(session, roles)
    principal = Principal(
        id=user_id,
        kind="user",
        roles=roles,
        permissions=frozenset(p for role in roles for p in grants[role]),
    )
    return frozenset(p for p in granted if permitted(context, principal, p))


async def user_grants(
    session: AsyncSession,
    user_id: uuid.UUID,
    permissions: Iterable[str],
    *,
    hooks: bool = False,
) -> frozenset[str] | None:
    """Which of ``permissions`` the user's roles grant now (all of them for ``*``);
    ``None`` when no active user has that id. One read, in ``session``: what the roles
    a record's owner holds let them do with it.

    ``hooks``: less what a ``crm2_check_permission`` hook of the session's application
    denies them, as a request of theirs would be denied: the owner rule
    (:func:`resolve_owner`'s ``may_own``). Costs reads only when a plugin implements
    the hook; a session of no application (whose hooks cannot be asked) raises
    ``RuntimeError`` rather than answer by the roles alone."""
    wanted = sorted(set(permissions))

    def grants(permission: str) -> Any:
        return exists().where(
            col(UserRole.user_id) == user_id,
            col(RolePermission.role_name) == col(UserRole.role_name),
            # not IN (…): an expanding parameter would keep it off the driver's path,
            # and a create would pay BEGIN and COMMIT for this read
            or_(
                col(RolePermission.permission) == permission, col(RolePermission.permission) == "*"
            ),
        )

    active = exists().where(col(User.id) == user_id, col(User.is_active).is_(True))
    stmt = select(active, *(grants(p) for p in wanted))
    row = (await execute_in_session(session, stmt, reads_only=True))[0]
    if not row[0]:
        return None
    granted = frozenset(p for p, held in zip(wanted, row[1:], strict=True) if held)
    return await _not_vetoed(session, user_id, granted) if hooks else granted


async def user_permitted(
    context: AppContext,
    session: AsyncSession,
    user_id: uuid.UUID,
    permission: str,
    resource: object | None = None,
) -> bool:
    """Whether the user is active and holds ``permission`` through their roles as they are
    now, with no ``crm2_check_permission`` veto: for a credential that is not a request's
    principal (a calendar feed's token, a job acting for a user), so a removed right stops
    it at once. Read in ``session``: the role cache's own session would wait on SQLite for
    the write lock this one may hold."""
    found = await credential_permitted(context, session, "user", user_id, permission, resource)
    return found is not None


async def users_permitted(
    context: AppContext,
    session: AsyncSession,
    user_ids: Iterable[uuid.UUID],
    permission: str,
) -> set[uuid.UUID]:
    """The users among ``user_ids`` for whom :func:`user_permitted` holds (active, the
    permission through their roles as they are now, no ``crm2_check_permission`` veto),
    in three reads whatever their number: for a fan-out to many people at once."""
    wanted = list(set(user_ids))
    if not wanted:
        return set()
    stmt = select(col(User.id)).where(col(User.id).in_(wanted), col(User.is_active).is_(True))
    active = list((await session.execute(stmt)).scalars())
    roles = await roles_of(session, active)
    grants = await permissions_of_roles(session, {r for held in roles.values() for r in held})
    found: set[uuid.UUID] = set()
    for user_id in active:
        held = frozenset(roles[user_id])
        principal = Principal(
            id=user_id,
            kind="user",
            roles=held,
            permissions=frozenset(p for role in held for p in grants[role]),
        )
        if permitted(context, principal, permission):
            found.add(user_id)
    return found


async def credential_permitted(
    context: AppContext,
    session: AsyncSession,
    kind: str,
    credential_id: uuid.UUID,
    permission: str,
    resource: object | None = None,
) -> Principal | None:
    """The principal a stored credential stands for now, if it holds ``permission``;
    ``None`` once it does not (or no longer stands).

    ``kind`` ``"user"``: an active user with their roles as they are now (as
    :func:`user_permitted`). ``"api_key"``: a key neither revoked, expired nor deleted,
    with its role's permissions, acting for its creator (``acting_user``): for something
    issued with a key (a signed URL) that must stop with the key, not with its creator."""
    created_by: dict[str, object] = {}
    if kind == "user":
        if not await is_active_user(session, credential_id):
            return None
        roles = frozenset((await roles_of(session, [credential_id]))[credential_id])
    elif kind == "api_key":
        try:
            key = await context.authenticator.standing_key(credential_id)
        except Unauthorized:
            return None
        roles, created_by = frozenset({key.role_name}), {"created_by": key.created_by}
    else:
        return None
    grants = await permissions_of_roles(session, roles)
    principal = Principal(
        id=credential_id,
        kind=kind,
        roles=roles,
        permissions=frozenset(p for role in roles for p in grants[role]),
        attributes=created_by,
    )
    return principal if permitted(context, principal, permission, resource) else None


def _verified_active(principal: Principal) -> bool:
    """Whether authenticating this request already found the caller an active user.

    A bearer token's user passed ``Authenticator.check_credentials`` (exists, active,
    current credentials version) for this very request, which marks the principal with
    its ``credentials_version``: asking the database again adds a round trip to every
    create and proves nothing more.
    """
    return principal.kind == "user" and "credentials_version" in principal.attributes


async def resolve_owner(
    session: AsyncSession,
    principal: Principal,
    visibility: Visibility,
    requested: uuid.UUID | None,
    *,
    default: uuid.UUID | None = None,
    current: uuid.UUID | None = None,
    may_own: str | None = None,
) -> uuid.UUID:
    """The owner to store: ``requested``, else ``default``, else the acting user.

    ``current`` is the record's owner today: keeping it needs no check. ``may_own``:
    the permission an owner must hold (the plugin's write permission), else 422
    ``owner-not-permitted``: granted by their roles and denied by no
    ``crm2_check_permission`` hook of the session's application, as their own request
    would be judged (a user a plugin bars from writing owns nothing either); the caller
    themselves, signed in, is judged without a read.
    """
    owner = requested or default or acting_user(principal)
    if current is not None and owner == current:
        return owner
    if not visibility.allows(owner):
        raise OwnerForbidden("you can only assign records to yourself")
    if (
        owner == principal.id
        and _verified_active(principal)
        and (may_own is None or _holds(session, principal, may_own))
    ):
        return owner
    if may_own is None:
        if not await is_active_user(session, owner):
            raise OwnerNotActive(f"owner {owner} is not an active user")
        return owner
    granted = await user_grants(session, owner, (may_own,), hooks=True)
    if granted is None:
        raise OwnerNotActive(f"owner {owner} is not an active user")
    if may_own not in granted:
        raise OwnerNotPermitted(
            f"user {owner} cannot own these records: they may not {may_own} "
            "(their roles do not grant it, or a plugin's permission rule denies it)"
        )
    return owner


def _holds(session: AsyncSession, principal: Principal, permission: str) -> bool:
    """The signed-in caller's own standing, judged as their request was (no read).

    A session of no application raises (``permitted_in_session``): the roles alone
    would let a caller a ``crm2_check_permission`` hook denies ``permission`` own it."""
    return permitted_in_session(session, principal, permission)


async def user_ids_by_email(session: AsyncSession, emails: Iterable[str]) -> dict[str, uuid.UUID]:
    """Lower-cased e-mail → user id, for the e-mails that are users."""
    wanted = {e.lower() for e in emails}
    if not wanted:
        return {}
    stmt = select(func.lower(User.email), col(User.id)).where(func.lower(User.email).in_(wanted))
    return {email: user_id for email, user_id in (await session.execute(stmt)).all()}


async def user_emails(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """User id → e-mail (for exports)."""
    wanted = set(ids)
    if not wanted:
        return {}
    stmt = select(col(User.id), col(User.email)).where(col(User.id).in_(wanted))
    return {user_id: email for user_id, email in (await session.execute(stmt)).all()}


async def create_user(
    context: AppContext,
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
    user = await context.auth.create_user(session, data)
    user_id: uuid.UUID = user.id
    return user_id
