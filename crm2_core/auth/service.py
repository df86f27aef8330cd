"""Auth business rules: login, refresh rotation, users, roles, API keys. Never commits."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.auth import confirmation
from crm2_core.auth import repository as repo
from crm2_core.auth.authenticator import API_KEY_PREFIX, RoleCache, hash_secret
from crm2_core.auth.config import AuthSettings
from crm2_core.auth.credentials import ApiKeyCache, CredentialsCache, after_commit
from crm2_core.auth.delays import LoginDelays
from crm2_core.auth.errors import (
    AdminHoldsEverything,
    ApiKeyNotFound,
    BuiltinRole,
    CredentialsChanged,
    CurrentPasswordRequired,
    EmailLookAlike,
    EmailTaken,
    ExpiryPassed,
    InvalidCredentials,
    InvalidRefreshToken,
    LastAdmin,
    PrivilegeEscalation,
    RefreshTokenReused,
    RoleExists,
    RoleInUse,
    RoleNotFound,
    UnknownPermission,
    UnknownRole,
    UnknownUser,
    UserNotFound,
    UserOwnsRecords,
    WrongCurrentPassword,
)
from crm2_core.auth.events import ApiKeysRevoked, RoleChanged, UserCredentialsChanged
from crm2_core.auth.models import (
    MAX_EMAIL_LENGTH,
    ApiKey,
    PermissionRecord,
    RefreshToken,
    Role,
    User,
)
from crm2_core.auth.ownership import owns_records, reassign, user_references
from crm2_core.auth.passwords import Passwords
from crm2_core.auth.privileges import EVERYTHING, acting_user, missing, require_covered
from crm2_core.auth.schemas import (
    ApiKeyCreate,
    LoginPending,
    RoleCreate,
    RoleUpdate,
    TokenPair,
    UserCreate,
    UserUpdate,
    normal_email,
    skeleton,
)
from crm2_core.auth.throttle import LoginThrottle
from crm2_core.auth.tokens import TokenService
from crm2_core.db import utcnow
from crm2_core.db.pagination import PageParams
from crm2_core.db.versioned import delete_versioned, update_versioned
from crm2_core.errors import PreconditionFailed, TooManyRequests, Unauthorized
from crm2_core.events.outbox import publish
from crm2_core.http.etag import check_version, etag_for
from crm2_hookspecs import BUILTIN_ROLES, Permission, Principal

log = logging.getLogger(__name__)

ROLE_DESCRIPTIONS = {
    "admin": "Everything, including users, roles and plugins",
    "manager": "Sees and edits everyone's records",
    "agent": "Sees and edits the records they own",
    "viewer": "Reads everything, writes nothing",
}


@dataclass
class AuthService:
    settings: AuthSettings
    tokens: TokenService
    passwords: Passwords
    throttle: LoginThrottle
    roles: RoleCache
    credentials: CredentialsCache
    delays: LoginDelays
    # the running application: which plugins are enabled, and their hooks (ownership)
    context: Any = None
    # API key rows cached by the authenticator: revocations drop them after commit
    api_keys: ApiKeyCache | None = None

    # -- sessions ---------------------------------------------------------------

    async def login(
        self, session: AsyncSession, email: str, password: str, ip: str
    ) -> TokenPair | LoginPending:
        """Tokens, or ``LoginPending`` when a plugin has the user confirm the sign-in first.

        On ``InvalidCredentials`` the caller must still commit: ``auth.login.failed`` is in
        the session (and nothing else is written before the password is checked).
        """
        email = normal_email(email)
        if len(email) > MAX_EMAIL_LENGTH:
            # lower() can lengthen an address ("İ" becomes two code points): no account
            # has it, and it would not fit auth_login_failure.account. Nothing is written.
            raise InvalidCredentials("wrong e-mail or password")
        s = self.settings
        wait = await self.throttle.hit(
            f"ip:{ip}", s.login_max_failures_per_ip, s.login_window_seconds
        )
        if wait:
            raise TooManyRequests("too many failed logins from this address", retry_after=wait)
        wait = await self.delays.take(email, ip)
        if wait:
            raise TooManyRequests(
                f"too many failed logins on this account from this address; wait {wait} s",
                retry_after=wait,
            )
        user = await repo.user_by_email(session, email)
        ok = await self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or not user.is_active:
            if user is not None:  # someone to tell (auth.login.failed); unknown e-mails: no one
                await self.delays.failed(
                    session, email, ip, user.id, "account_disabled" if ok else "wrong_password"
                )
            raise InvalidCredentials("wrong e-mail or password")
        await self.delays.succeeded(session, email, ip)
        await self.throttle.release(f"ip:{ip}")
        if self.passwords.needs_rehash(user.password_hash):
            user.password_hash = await self.passwords.hash(password)
        ttl = self.settings.login_confirmation_ttl_seconds
        pending = await confirmation.ask(self.context, session, user, ip, ttl)
        if pending is not None:
            return pending
        roles = (await repo.roles_of(session, [user.id]))[user.id]
        return await self._issue(session, user, frozenset(roles), family_id=uuid.uuid4())

    async def confirm_login(self, session: AsyncSession, secret: str) -> TokenPair | LoginPending:
        """The tokens of a sign-in its user confirmed (once), or ``LoginPending`` while waiting."""
        found = await confirmation.redeem(session, secret)
        if isinstance(found, LoginPending):
            return found
        user = await repo.user_by_id(session, found.user_id)
        if user is None or not user.is_active:
            raise InvalidCredentials("the account is disabled")
        roles = (await repo.roles_of(session, [user.id]))[user.id]
        return await self._issue(session, user, frozenset(roles), family_id=uuid.uuid4())

    async def _issue(
        self,
        session: AsyncSession,
        user: User,
        roles: frozenset[str],
        family_id: uuid.UUID,
        expires_at: datetime | None = None,
    ) -> TokenPair:
        """A new pair; a rotated refresh token keeps its family's end (the TTL spans the login)."""
        refresh = secrets.token_urlsafe(32)
        now = utcnow()
        session.add(
            RefreshToken(
                family_id=family_id,
                user_id=user.id,
                token_hash=hash_secret(refresh),
                issued_at=now,
                expires_at=expires_at or now + timedelta(seconds=self.settings.refresh_ttl_seconds),
            )
        )
        await session.flush()
        return TokenPair(
            access_token=self.tokens.issue_access(user.id, roles, user.credentials_version),
            refresh_token=refresh,
            expires_in=self.settings.access_ttl_seconds,
        )

    async def refresh(self, session: AsyncSession, refresh_token: str) -> TokenPair:
        """Rotate a refresh token. A spent one coming back revokes its whole family.

        On ``RefreshTokenReused`` the caller must still commit: the revocation is the point.
        """
        now = utcnow()
        found = await repo.refresh_for_rotation(session, hash_secret(refresh_token))
        if found is None:
            raise InvalidRefreshToken("the refresh token is invalid, expired or revoked")
        row, credentials_version = found
        if row.revoked_at is not None or row.expires_at <= now:
            raise InvalidRefreshToken("the refresh token is invalid, expired or revoked")
        # The user is kept as read (FOR SHARE) until the new pair commits, and before the
        # old token is locked by spending it: a concurrent change of their credentials
        # waits, then revokes the new pair too (it could not see an uncommitted row),
        # or committed first and revoked this token (the spend below then fails).
        user = await repo.user_for_share(session, row.user_id)
        used = row.used_at is not None  # as read: the spend below may rewrite row.used_at
        spent = not used and await repo.spend_refresh(session, row.id, now)
        if not spent and not used and not await repo.refresh_was_spent(session, row.id):
            # Lost a race, not to a rotation of this token but to its revocation, which
            # committed after the token was read: nobody reused it (the revoker ended
            # its family, or all the user's, already). Say why the session ended.
            if (
                user is None
                or not user.is_active
                or user.credentials_version != credentials_version
            ):
                raise CredentialsChanged(
                    "the account's password, roles or active flag changed; sign in again"
                )
            raise InvalidRefreshToken("the refresh token was revoked meanwhile; sign in again")
        if not spent:  # spent before, or by a rotation racing this one: reuse
            await repo.revoke_family(session, row.family_id, now)
            log.warning(
                "refresh token reuse for user %s: family %s revoked", row.user_id, row.family_id
            )
            raise RefreshTokenReused("this refresh token was already used; sign in again")
        if user is None or not user.is_active:
            raise InvalidRefreshToken("the account is disabled")
        roles = (await repo.roles_of(session, [user.id]))[user.id]
        return await self._issue(
            session, user, frozenset(roles), family_id=row.family_id, expires_at=row.expires_at
        )

    async def logout(self, session: AsyncSession, refresh_token: str) -> None:
        row = await repo.refresh_by_hash(session, hash_secret(refresh_token))
        if row is not None:
            await repo.revoke_family(session, row.family_id, utcnow())

    # -- users ------------------------------------------------------------------

    async def _check_roles(self, session: AsyncSession, roles: Iterable[str]) -> list[str]:
        """The roles, sorted, once all exist; locked, so a concurrent delete waits (409)."""
        wanted = sorted(set(roles))
        missing = set(wanted) - await repo.existing_roles(session, wanted, lock=True)
        if missing:
            raise UnknownRole(f"unknown role(s): {', '.join(sorted(missing))}")
        return wanted

    async def _permissions_of(self, session: AsyncSession, roles: Iterable[str]) -> set[str]:
        """The union of the permissions the roles grant, as stored (not the cache)."""
        grants = await repo.permissions_of_roles(session, roles)
        return {p for perms in grants.values() for p in perms}

    async def _require_grantable(
        self, session: AsyncSession, actor: Principal | None, roles: Iterable[str]
    ) -> None:
        if actor is None:  # the system itself: the CLI, the first admin
            return
        for role in sorted(set(roles)):
            wanted = await self._permissions_of(session, [role])
            require_covered(actor.permissions, wanted, f"granting role {role!r}")

    async def create_user(
        self,
        session: AsyncSession,
        data: UserCreate,
        actor: Principal | None = None,
        ip: str = "unknown",
    ) -> User:
        if actor is not None:  # before this session's first statement (SQLite: IMMEDIATE)
            await self._confirm_granting(session, actor, set(data.roles), data.current_password, ip)
        email = normal_email(str(data.email))
        if await repo.user_by_email(session, email) is not None:
            raise EmailTaken(f"a user with e-mail {email} exists")
        await self._require_unlike_others(session, email)
        roles = await self._check_roles(session, data.roles)
        await self._require_grantable(session, actor, roles)
        await self._require_granter_holds(session, actor, roles, lock=True)
        user = User(
            email=email,
            full_name=data.full_name,
            is_active=data.is_active,
            password_hash=await self.passwords.hash(data.password),
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent request took the address first
            raise EmailTaken(f"a user with e-mail {email} exists") from exc
        await repo.set_roles(session, user.id, roles)
        return user

    @staticmethod
    async def _require_unlike_others(session: AsyncSession, email: str) -> None:
        """409 when ``email`` reads as an existing user's address ("ace@…" in Cyrillic
        letters for Latin "ace@…", or the other way round), which the mixed-script rule of
        ``plain_email`` cannot see: one whole part is in one script. The other address
        is not named (the caller may be a plugin or job acting for anyone)."""
        mine = skeleton(email)
        if any(skeleton(other) == mine for other in await repo.all_emails(session)):
            raise EmailLookAlike(
                f"{email} reads the same as an existing user's address (Cyrillic or Greek "
                "letters drawn like Latin ones, or the reverse); use another address"
            )

    async def get_user(self, session: AsyncSession, user_id: uuid.UUID) -> User:
        user = await repo.user_by_id(session, user_id)
        if user is None:
            raise UserNotFound(f"no user {user_id}")
        return user

    async def _require_over(
        self, session: AsyncSession, actor: Principal | None, user_id: uuid.UUID, what: str
    ) -> list[str]:
        """The user's roles, once ``actor`` is shown to hold everything the user holds."""
        roles = (await repo.roles_of(session, [user_id]))[user_id]
        if actor is not None:
            held = await self._permissions_of(session, roles)
            require_covered(actor.permissions, held, what)
            # and on the caller's rights as stored: the change outlives the request
            await self._require_holds_as_stored(session, actor, held | {"auth:users"}, what)
        return roles

    async def update_user(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        if_match: str,
        data: UserUpdate,
        actor: Principal | None = None,
        ip: str = "unknown",
    ) -> User:
        verified: str | None = None
        confirmer, what = None, ""  # whose current password this change needs, and why
        if (data.password is not None or data.roles is not None) and actor is not None:
            confirmer, what = await self._confirmer(session, user_id, actor, data)
        if confirmer is not None:
            # before this session's first statement: on SQLite that begins IMMEDIATE,
            # and the attempt is counted in a transaction of its own (``_before``)
            verified = await self._require_current_password(
                session, confirmer, data.current_password, ip, own=confirmer == user_id, what=what
            )
        await self._lock_for_change(session, actor, user_id)
        user = await self.get_user(session, user_id)
        if verified is not None and confirmer is not None:
            checked = user if confirmer == user_id else await repo.user_by_id(session, confirmer)
            if checked is None or checked.password_hash != verified:
                # changed between the check and this read: what was checked is no longer it
                raise WrongCurrentPassword("your password changed meanwhile; sign in again")
        version = check_version(if_match, user.version)
        current = await self._require_over(session, actor, user_id, "changing this user")
        if (
            data.password is not None
            and actor is not None
            and confirmer is None
            and _administers(await self._permissions_of(session, current))
        ):  # made an administrator since the check above: theirs is no plain reset now
            raise CurrentPasswordRequired(
                "this user became an administrator meanwhile: resetting their password "
                "needs current_password (your own password as it is now)"
            )
        values: dict[str, object] = {"updated_at": utcnow()}
        reasons: list[str] = []
        if data.full_name is not None:
            values["full_name"] = data.full_name
        if data.is_active is not None and data.is_active != user.is_active:
            values["is_active"] = data.is_active
            reasons.append("active")
        if data.password is not None:
            values["password_hash"] = await self.passwords.hash(data.password)
            reasons.append("password")
        roles = await self._check_roles(session, data.roles) if data.roles is not None else None
        if roles is not None and roles != sorted(current):
            if (
                actor is not None
                and acting_user(actor) == user_id
                and EVERYTHING not in actor.permissions
            ):
                raise PrivilegeEscalation("changing your own roles needs the admin role")
            await self._require_grantable(session, actor, set(roles) - set(current))
            # locked (the rows by _lock_for_change, and the granter's roles): a demotion
            # of the granter waits for the grant, or committed first and is read here
            await self._require_granter_holds(session, actor, set(roles) - set(current), lock=True)
            reasons.append("roles")
        else:
            roles = None
        loses_admin = data.is_active is False or (roles is not None and "admin" not in roles)
        if loses_admin:
            await self._keep_an_admin(session, user_id)
        if reasons:
            values["credentials_version"] = user.credentials_version + 1
        await update_versioned(session, User, col(User.id) == user_id, version, values)
        if roles is not None:
            await repo.set_roles(session, user_id, roles)
        if reasons:
            # before the refresh tokens: a redemption in flight commits its pair first
            await confirmation.revoke_for_user(session, user_id)
            await repo.revoke_user_tokens(session, user_id, utcnow())
            self._credentials_changed(
                session, user_id, user.credentials_version + 1, ",".join(reasons), actor
            )
            if "roles" in reasons or "active" in reasons:
                await self.revoke_ungrantable_keys(session, actor)
        if data.revoke_api_keys:
            keys = await repo.live_api_keys_created_by(session, user_id)
            await self._revoke_keys(session, keys, "creator-keys-revoked")
        return await self.get_user(session, user_id)

    async def _lock_for_change(
        self, session: AsyncSession, actor: Principal | None, user_id: uuid.UUID
    ) -> None:
        """Lock the rows of the acting user (``FOR SHARE``: their authority is what the
        change stands on) and of the changed user (as its UPDATE would), in id order.

        The acting user's rights are then read as stored and stay so until commit: a
        demotion of theirs (itself a change of a user, which locks the same way) waits
        for this one, or committed first and is read. In one order, two admins changing
        each other at once take turns rather than deadlock."""
        acting = {acting_user(actor)} if actor is not None else set()
        await repo.lock_users(session, acting - {user_id}, {user_id})

    @asynccontextmanager
    async def _before(self, session: AsyncSession) -> AsyncIterator[AsyncSession]:
        """Where the checks made before a change read (and count a password attempt): a
        session of their own while the caller's has sent nothing yet, so the password is
        checked before its first statement (SQLite begins IMMEDIATE: nobody waits for the
        writer lock through a password hash), and the attempt is kept whatever the change
        does. The caller's own once its transaction has begun (a plugin or the CLI that
        read or wrote first): on SQLite it holds the writer lock, and a session of ours
        would wait for it until "database is locked"."""
        if session.in_transaction():
            yield session
            return
        async with self.context.session_factory() as own:
            yield own

    async def _confirmer(
        self, session: AsyncSession, user_id: uuid.UUID, actor: Principal, data: UserUpdate
    ) -> tuple[uuid.UUID | None, str]:
        """Whose current password ``data`` for ``user_id`` by ``actor`` needs, and why: the
        actor's (the user they act for) for their own new password, for another
        administrator's (a user holding ``auth:users`` or ``*``), and for making someone an
        administrator: else a stolen admin token would reset another admin's password (or
        demote, reset and promote them, or make one), sign in as them, and through that
        account take the first's. ``None`` for a plain change. Read in a session of its
        own, before the update's (``_before``): a caller who may not change the user at
        all learns so (403) before any password is asked."""
        acting = acting_user(actor)
        if acting == user_id:  # one's own roles need "*" already: nothing more to confirm
            return (acting, "changing your own password") if data.password else (None, "")
        async with self._before(session) as own:
            roles = (await repo.roles_of(own, [user_id]))[user_id]
            held = await self._permissions_of(own, roles)
            granted = await self._permissions_of(own, set(data.roles or ()) - set(roles))
        require_covered(actor.permissions, held, "changing this user")
        if data.password is not None and _administers(held):
            return acting, "resetting another administrator's password"
        if _grants_administration(held, granted):
            require_covered(actor.permissions, granted, "granting these roles")
            return acting, _GRANTING
        return None, ""

    async def _confirm_granting(
        self,
        session: AsyncSession,
        actor: Principal,
        roles: Iterable[str],
        password: str | None,
        ip: str,
    ) -> None:
        """403 for roles ``actor`` may not grant, else the actor's current password when
        the roles make an administrator (``auth:users`` or ``*``): as for resetting one."""
        async with self._before(session) as own:
            granted = await self._permissions_of(own, roles)
        if _administers(granted):
            require_covered(actor.permissions, granted, "granting these roles")
            await self._require_current_password(
                session, acting_user(actor), password, ip, own=False, what=_GRANTING
            )

    async def _require_current_password(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        password: str | None,
        ip: str,
        *,
        own: bool = True,
        what: str = "changing your own password",
    ) -> str | None:
        """422 without, 403 with a wrong current password of ``user_id`` (the acting user):
        a stolen token (or a key the user made) must not turn into the account itself, nor
        (``own`` false) into another administrator's. Each try counts as a sign-in attempt
        on the account from ``ip`` (the same delays and per-address limit as ``/login``, and
        a wrong one publishes ``auth.login.failed`` as a refused sign-in does), so this is
        no side door for guessing the password.

        Read and counted as ``_before`` says: in the caller's ``session`` once it has begun,
        where a wrong password's count and ``auth.login.failed`` are kept only if the caller
        commits after ``WrongCurrentPassword`` (as ``/login``'s route does after
        ``InvalidCredentials``); the per-address throttle counts it either way."""
        if password is None:
            raise CurrentPasswordRequired(
                f"{what} needs current_password (your password as it is now)"
            )
        joined = session if session.in_transaction() else None
        async with self._before(session) as own_session:
            user = await repo.user_by_id(own_session, user_id)
        if user is None:
            if own:
                return None  # gone: the update answers 404
            # signed in by a crm2_authenticate backend: no password here to confirm with
            raise WrongCurrentPassword(
                f"{what} needs your current password, and your account has none here; "
                "ask an operator (crm2 users set-password, crm2 users create)"
            )
        s = self.settings
        wait = await self.throttle.hit(
            f"ip:{ip}", s.login_max_failures_per_ip, s.login_window_seconds
        )
        if wait:
            raise TooManyRequests("too many failed logins from this address", retry_after=wait)
        wait = await self.delays.take(user.email, ip, joined)
        if wait:
            raise TooManyRequests(
                f"too many wrong passwords on this account from this address; wait {wait} s",
                retry_after=wait,
            )
        if not await self.passwords.verify(user.password_hash, password):
            # in a transaction of its own (unless joined): the refused request's rolls back
            async with self._before(session) as own_session:
                await self.delays.failed(own_session, user.email, ip, user.id, "wrong_password")
                if joined is None:
                    await own_session.commit()
            raise WrongCurrentPassword("current_password is not your password")
        async with self._before(session) as own_session:  # right: as a sign-in
            await self.delays.succeeded(own_session, user.email, ip)
            if joined is None:
                await own_session.commit()
        await self.throttle.release(f"ip:{ip}")
        return user.password_hash  # the update checks it is still the one (else 403)

    async def set_password(self, session: AsyncSession, email: str, data: UserUpdate) -> bool:
        """The operator's reset (``crm2 users set-password``); ``False``: no such user."""
        user = await repo.user_by_email(session, normal_email(email))
        if user is None:
            return False
        await self.update_user(session, user.id, etag_for(user.version), data)
        return True

    def _credentials_changed(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        version: int | None,
        reason: str,
        actor: Principal | None,
    ) -> None:
        """Tell every process (by event) and this one (after commit) to forget the old ones."""
        event = UserCredentialsChanged(user_id=user_id, credentials_version=version, reason=reason)
        publish(session, event, subject=user_id, actor=actor)
        after_commit(session, lambda: self.credentials.invalidate(user_id))

    async def _keep_an_admin(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        """Refuse to leave the installation without an active admin."""
        current = (await repo.roles_of(session, [user_id]))[user_id]
        if "admin" not in current:
            return
        await repo.lock_admins(session)  # held to the commit: count after any other removal
        if await repo.count_active_admins(session, excluding=user_id) == 0:
            raise LastAdmin("this is the last active admin; make another admin first")

    async def delete_user(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        actor: Principal | None = None,
        if_match: str | None = None,
    ) -> None:
        """Delete a user who owns nothing (409 ``user-owns-records`` naming what, else).

        An ``If-Match`` (optional) must name the user's version, also at the ``DELETE``.
        """
        user = await self.get_user(session, user_id)
        expected = None if if_match is None else check_version(if_match, user.version)
        await self._require_over(session, actor, user_id, "deleting this user")
        await self._keep_an_admin(session, user_id)
        if self.context is not None:
            references = await user_references(self.context, session, user_id)
            if references:
                raise owns_records(user_id, references)
        await self._revoke_keys(
            session, await repo.live_api_keys_created_by(session, user_id), "creator-deleted"
        )
        self._credentials_changed(session, user_id, None, "deleted", actor)
        await session.flush()
        try:
            deleted = await delete_versioned(session, User, col(User.id) == user_id, expected)
        except IntegrityError as exc:  # a table of a disabled plugin still points at the user
            raise UserOwnsRecords(
                f"user {user_id} still owns records of a plugin that is not enabled; "
                "enable it and hand them over (POST …/reassign), then delete"
            ) from exc
        if not deleted:
            await self._gone_or_changed(session, User, col(User.id) == user_id, f"user {user_id}")

    @staticmethod
    async def _gone_or_changed(session: AsyncSession, model: Any, where: Any, what: str) -> None:
        """Why a conditional ``DELETE`` removed nothing: 412 if the row is still there
        (another version), else the row's 404 (a concurrent delete went first)."""
        if await session.scalar(select(func.count()).select_from(model).where(where)):
            raise PreconditionFailed(f"the {what} changed while you were deleting it; read again")
        raise (UserNotFound if model is User else RoleNotFound)(f"no {what}")

    async def reassign_user(
        self,
        session: AsyncSession,
        from_user: uuid.UUID,
        to_user: uuid.UUID,
        actor: Principal | None = None,
    ) -> dict[str, int]:
        """Hand every record ``from_user`` owns to ``to_user`` (an active user)."""
        await self.get_user(session, from_user)
        await self._require_over(session, actor, from_user, "handing over this user's records")
        target = await repo.user_by_id(session, to_user)
        if target is None or not target.is_active:
            raise UnknownUser(f"{to_user} is not an active user")
        if to_user == from_user:
            raise UnknownUser("hand the records to another user")
        moved = await reassign(self.context, session, from_user, to_user, actor)
        # Read above unlocked: a deactivation committed since would leave the records
        # with an inactive user. Read again, share-locked to the commit: a deactivation
        # in flight is waited for (and seen), a later one waits for the hand-over. A
        # plugin that locks the leaving user's row took this lock already, in id order
        # with that one (deals' ``reassign``): two hand-overs between the same two
        # users then take the rows in one order, no deadlock.
        target = await repo.user_for_share(session, to_user)
        if target is None or not target.is_active:
            raise UnknownUser(f"{to_user} is not an active user (deactivated meanwhile)")
        return moved

    # -- keys that outlived their creator's rights --------------------------------

    async def revoke_ungrantable_keys(
        self, session: AsyncSession, actor: Principal | None = None
    ) -> list[uuid.UUID]:
        """Revoke every live API key its creator could no longer create today.

        A key stands only while its creator is active, holds ``auth:api_keys`` and
        holds every permission of the key's role. Keys are few; all are checked.
        """
        keys = await repo.live_api_keys(session)
        creators = {k.created_by for k in keys if k.created_by is not None}
        if not creators and not any(k.created_by_key for k in keys):
            return []
        active = await repo.active_user_ids(session, creators)
        creator_roles = await repo.roles_of(session, creators)
        names = {r for rs in creator_roles.values() for r in rs} | {k.role_name for k in keys}
        grants = await repo.permissions_of_roles(session, names)
        makers = {k.id: k for k in keys}
        doomed: list[ApiKey] = []
        for key in keys:
            wanted = grants[key.role_name]
            if key.created_by is not None:
                held = frozenset(
                    p for r in creator_roles.get(key.created_by, []) for p in grants[r]
                )
                if key.created_by not in active or not _may_make(held, wanted):
                    doomed.append(key)
                    continue
            # A key made with a key holds no more than that key could give it today.
            maker = makers.get(key.created_by_key) if key.created_by_key else None
            if maker is not None and not _may_make(frozenset(grants[maker.role_name]), wanted):
                doomed.append(key)
        return await self._revoke_keys(session, doomed, "creator-lost-the-right")

    async def _revoke_keys(
        self, session: AsyncSession, keys: Sequence[ApiKey], reason: str
    ) -> list[uuid.UUID]:
        """Revoke ``keys`` and every live key made with them, in one event."""
        ids = {k.id for k in keys}
        frontier = set(ids)
        while frontier:
            children = await repo.live_api_keys_made_by_keys(session, frontier)
            frontier = {c for c in children if c not in ids}
            ids |= frontier
        if not ids:
            return []
        await repo.revoke_api_keys(session, ids, utcnow())
        if self.api_keys is not None:
            cache = self.api_keys
            after_commit(session, lambda: cache.invalidate(ids))
        publish(
            session,
            ApiKeysRevoked(key_ids=sorted(ids), reason=reason),
            subject=sorted(ids)[0],
        )
        return sorted(ids)

    # -- roles and permissions ---------------------------------------------------

    async def _check_permissions(self, session: AsyncSession, names: Iterable[str]) -> list[str]:
        wanted = sorted(set(names))
        known = await repo.known_permissions(session)
        unknown = [p for p in wanted if p != "*" and p not in known]
        if unknown:
            raise UnknownPermission(f"unknown permission(s): {', '.join(unknown)}")
        return wanted

    async def get_role(self, session: AsyncSession, name: str) -> Role:
        role = await repo.role(session, name)
        if role is None:
            raise RoleNotFound(f"no role {name!r}")
        return role

    def _role_changed(
        self, session: AsyncSession, name: str, actor: Principal | None, deleted: bool = False
    ) -> None:
        publish(session, RoleChanged(name=name, deleted=deleted), subject=name, actor=actor)
        after_commit(session, self.roles.invalidate)

    async def create_role(
        self, session: AsyncSession, data: RoleCreate, actor: Principal | None = None
    ) -> Role:
        if await repo.role(session, data.name) is not None:
            raise RoleExists(f"role {data.name!r} exists")
        permissions = await self._check_permissions(session, data.permissions)
        if actor is not None:
            what = f"creating role {data.name!r}"
            require_covered(actor.permissions, permissions, what)
            await self._hold_granter(session, actor)  # locked as read, until commit
            await self._require_holds_as_stored(session, actor, {*permissions, "auth:roles"}, what)
        role = Role(name=data.name, description=data.description)
        session.add(role)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent request created it first
            raise RoleExists(f"role {data.name!r} exists") from exc
        await repo.set_role_permissions(session, role.name, permissions)
        self._role_changed(session, role.name, actor)
        return role

    async def update_role(
        self,
        session: AsyncSession,
        name: str,
        if_match: str,
        data: RoleUpdate,
        actor: Principal | None = None,
        ip: str = "unknown",
    ) -> Role:
        if actor is not None and data.permissions is not None and _administers(data.permissions):
            # before this session's first statement (SQLite: IMMEDIATE), or in it (``_before``)
            async with self._before(session) as own:
                before = await self._permissions_of(own, [name])
            if _grants_administration(before, data.permissions):  # makes administrators
                require_covered(actor.permissions, data.permissions, f"changing role {name!r}")
                await self._require_current_password(
                    session,
                    acting_user(actor),
                    data.current_password,
                    ip,
                    own=False,
                    what=_GRANTING,
                )
        await self._lock_for_role_change(session, actor, name)
        role = await self.get_role(session, name)
        version = check_version(if_match, role.version)
        held = await self._permissions_of(session, [name])
        if actor is not None:
            require_covered(actor.permissions, held, f"changing role {name!r}")
        values: dict[str, object] = {"updated_at": utcnow()}
        if data.description is not None and data.description != role.description:
            values["description"] = data.description
        permissions = (
            await self._check_permissions(session, data.permissions)
            if data.permissions is not None
            else None
        )
        if permissions is not None and set(permissions) == held:
            permissions = None  # as they are: no new version, no event, no key revoked
        if actor is not None:
            what = f"changing role {name!r}"
            if permissions is not None:
                require_covered(actor.permissions, permissions, what)
            wanted = {*held, *(permissions or ()), "auth:roles"}
            await self._require_holds_as_stored(session, actor, wanted, what)
        if name == "admin" and permissions is not None and EVERYTHING not in permissions:
            # else nobody could grant "*" again, nor manage users and roles
            raise AdminHoldsEverything("the admin role keeps '*'; give other roles less instead")
        if permissions is None and len(values) == 1:  # a PATCH that changes nothing
            return role
        await update_versioned(session, Role, col(Role.name) == name, version, values)
        if permissions is not None:
            await repo.set_role_permissions(session, name, permissions)
            self._role_changed(session, name, actor)
            await self.revoke_ungrantable_keys(session, actor)
        return await self.get_role(session, name)

    async def _lock_for_role_change(
        self, session: AsyncSession, actor: Principal | None, name: str
    ) -> None:
        """Lock the acting user's row and roles (``FOR SHARE``, users before roles and
        roles in name order, as a change of a user does) and role ``name`` (as its UPDATE
        would): the actor's rights as stored, read next, stay so until commit, so a
        demotion or a cut of their role waits for this change or is read by it."""
        if actor is None or actor.kind not in ("user", "api_key"):
            return
        acting = acting_user(actor)
        await repo.lock_users(session, {acting}, ())
        held = (await repo.roles_of(session, [acting]))[acting]
        key_roles = actor.roles if actor.kind == "api_key" else ()
        await repo.lock_roles(session, {*held, *key_roles} - {name}, {name})

    async def delete_role(
        self,
        session: AsyncSession,
        name: str,
        actor: Principal | None = None,
        if_match: str | None = None,
    ) -> None:
        role = await self.get_role(session, name)
        expected = None if if_match is None else check_version(if_match, role.version)
        if actor is not None:
            what = f"deleting role {name!r}"
            held = await self._permissions_of(session, [name])
            require_covered(actor.permissions, held, what)
            await self._require_holds_as_stored(session, actor, {*held, "auth:roles"}, what)
        if role.builtin:
            raise BuiltinRole(f"{name} is a built-in role")
        in_use = f"role {name!r} is assigned to users or unrevoked API keys; unassign it first"
        if await repo.role_in_use(session, name):
            raise RoleInUse(in_use)
        # A revoked key never works again and its row must not keep the role alive:
        # it goes with the role (its revocation stays in the outbox's auth.api_key.revoked).
        await repo.delete_revoked_api_keys_of_role(session, name)
        await session.flush()
        try:
            deleted = await delete_versioned(session, Role, col(Role.name) == name, expected)
        except IntegrityError as exc:  # a concurrent request gave it to someone first
            raise RoleInUse(in_use) from exc
        if not deleted:
            await self._gone_or_changed(session, Role, col(Role.name) == name, f"role {name!r}")
        self._role_changed(session, name, actor, deleted=True)

    async def sync_permissions(
        self, session: AsyncSession, declared: Sequence[tuple[str, Permission]]
    ) -> None:
        """Create the built-in roles (the admin role with ``*``) and record declared permissions.

        A permission's default grants are applied only the first time it is
        seen, so an administrator's later changes to a role stick.
        """
        existing_roles = await repo.existing_roles(session, BUILTIN_ROLES)
        for name in BUILTIN_ROLES:
            if name not in existing_roles:
                session.add(Role(name=name, description=ROLE_DESCRIPTIONS[name], builtin=True))
        await session.flush()
        admin = (await repo.permissions_of_roles(session, ["admin"]))["admin"]
        if EVERYTHING not in admin:  # new, or emptied by a version that let it be
            await repo.set_role_permissions(session, "admin", [*admin, EVERYTHING])
        known = await repo.known_permissions(session)
        grants = await repo.permissions_of_roles(session, BUILTIN_ROLES)
        changed: set[str] = set()
        for plugin, permission in declared:
            if permission.name in known:
                continue
            session.add(
                PermissionRecord(
                    name=permission.name, description=permission.description, plugin=plugin
                )
            )
            for role in permission.default_roles:
                if role in grants and role != "admin":
                    grants[role].append(permission.name)
                    changed.add(role)
            known[permission.name] = PermissionRecord(name=permission.name, plugin=plugin)
        await session.flush()
        for role in sorted(changed):
            await repo.set_role_permissions(session, role, grants[role])
        self.roles.invalidate()
        if changed:  # a key bound to such a role may now hold what its creator lacks
            await self.revoke_ungrantable_keys(session)

    # -- API keys -----------------------------------------------------------------

    async def _require_standing(
        self, session: AsyncSession, actor: Principal | None, *, lock: bool = True
    ) -> None:
        """401 unless ``actor``'s authority is unchanged since the request authenticated.

        The acting user's row is locked until commit: a concurrent demotion either waits
        for this transaction (and then revokes what it made with the other keys), or
        committed first and is seen here. Without this, a key made while its creator
        was demoted outlived the demotion.
        """
        if actor is None or actor.kind not in ("user", "api_key"):
            return
        if lock:
            user = await repo.user_for_share(session, acting_user(actor))
        else:
            user = await repo.user_by_id(session, acting_user(actor))
        if actor.kind == "user":
            version = actor.attributes.get("credentials_version")
            moved = user is not None and version is not None and user.credentials_version != version
        else:
            key = await repo.api_key(session, actor.id)
            moved = key is None or key.revoked_at is not None
        if user is None or not user.is_active or moved:
            raise Unauthorized("your credentials changed meanwhile; sign in again")

    async def _require_granter_holds(
        self,
        session: AsyncSession,
        actor: Principal | None,
        roles: Iterable[str],
        *,
        lock: bool = False,
    ) -> None:
        """401/403 unless ``actor`` still stands and holds ``roles`` by their roles as
        stored: a user made or changed now keeps what they were given, so a grant decided
        on the request's cached rights must not outlive a demotion committed meanwhile.

        ``lock``: the granter's row and roles are kept as read until commit (see
        ``_hold_granter``), so a demotion cannot commit between this check and the grant.
        A change of a user locks both users' rows first (``_lock_for_change``).
        """
        if lock:
            await self._hold_granter(session, actor)
        for role in sorted(set(roles)):
            wanted = await self._permissions_of(session, [role])
            await self._require_holds_as_stored(session, actor, wanted, f"granting role {role!r}")

    async def _hold_granter(self, session: AsyncSession, actor: Principal | None) -> None:
        """Lock the granter's user row and role rows (``FOR SHARE`` on PostgreSQL; SQLite
        writes one at a time) until commit, then check their standing.

        Read unlocked, a demotion (or a cut of their role) committed between the check and
        the grant's commit: the new user kept a role its maker no longer held. Locked, the
        demotion waits for the grant, or committed first and is read by the check. A
        change of a user has locked both users' rows already, in id order (two admins
        changing each other would deadlock otherwise); roles are locked after users.
        """
        if actor is None or actor.kind not in ("user", "api_key"):
            return
        if actor.kind != "api_key" and "credentials_version" not in actor.attributes:
            return  # a crm2_authenticate backend's user: its roles are not stored here
        await self._require_standing(session, actor, lock=True)
        granter = acting_user(actor)
        held_roles = (await repo.roles_of(session, [granter]))[granter]
        key_roles = actor.roles if actor.kind == "api_key" else ()
        await repo.existing_roles(session, {*held_roles, *key_roles}, lock=True)

    async def _require_holds_as_stored(
        self, session: AsyncSession, actor: Principal | None, wanted: Iterable[str], what: str
    ) -> None:
        """401 unless ``actor`` still stands, 403 unless it holds ``wanted`` by its roles
        as stored (for a key: its role and its creator's roles, as the key acts for both).

        The request's permissions come from the role cache, as it authenticated: a caller
        demoted (or whose role lost a permission) meanwhile must not still grant, change
        or delete what they no longer hold. Read, not locked: two admins demoting each
        other at once lock each other's rows and the admins' turn (``_keep_an_admin``),
        and a lock here would close the cycle."""
        if actor is None:  # the system itself: the CLI, the first admin
            return
        if actor.kind != "api_key" and "credentials_version" not in actor.attributes:
            return  # a crm2_authenticate backend's user: its roles are not stored here
        await self._require_standing(session, actor, lock=False)
        granter = acting_user(actor)
        held_roles = (await repo.roles_of(session, [granter]))[granter]
        held = frozenset(await self._permissions_of(session, held_roles))
        if actor.kind == "api_key":
            held = _both(held, frozenset(await self._permissions_of(session, actor.roles)))
        require_covered(held, wanted, what)

    async def _require_creator_holds(
        self, session: AsyncSession, actor: Principal | None, role: str
    ) -> None:
        """403 unless the key's creator may make keys of ``role`` by their roles as stored.

        The request's permissions come from the role cache, which learns of a role's
        change only once it has committed. The creator's roles are locked until commit
        (``FOR SHARE``): a concurrent change of one waits for this transaction (and
        then revokes the new key with the others), or committed first and is read here.
        """
        if actor is None or actor.kind not in ("user", "api_key"):
            return
        creator = acting_user(actor)
        roles = (await repo.roles_of(session, [creator]))[creator]
        await repo.existing_roles(session, roles, lock=True)
        held = frozenset(await self._permissions_of(session, roles))
        wanted = await self._permissions_of(session, [role]) | {"auth:api_keys"}
        require_covered(held, wanted, f"granting role {role!r}")

    async def create_api_key(
        self,
        session: AsyncSession,
        data: ApiKeyCreate,
        actor: Principal | None = None,
        ip: str = "unknown",
    ) -> tuple[ApiKey, str]:
        """A new key of ``data.role``; made with a user's token, it needs their
        ``current_password``: a key outlives the token (a stolen one would leave a key
        behind that no sign-out, password change or token expiry ends). A key made with a
        key needs none: it ends with the key that made it (and expires no later)."""
        if actor is not None and actor.kind == "user" and "credentials_version" in actor.attributes:
            async with self._before(session) as own:  # 403 before any password is asked
                await self._require_grantable(own, actor, [data.role])
            await self._require_current_password(
                session, actor.id, data.current_password, ip, what="creating an API key"
            )
        await self._require_standing(session, actor)
        await self._check_roles(session, [data.role])
        await self._require_grantable(session, actor, [data.role])
        await self._require_creator_holds(session, actor, data.role)
        _require_future_expiry(data.expires_at)
        _require_within_expiry(actor, data.expires_at)
        created_by, created_by_key = None, None
        if actor is not None and actor.kind == "user":
            created_by = actor.id
        elif actor is not None and actor.kind == "api_key":
            # A key made by a key stands on the same person's authority, and goes with it.
            created_by, created_by_key = actor.attributes.get("created_by"), actor.id
        prefix = secrets.token_hex(4)
        key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32).replace('_', '-')}"
        row = ApiKey(
            name=data.name,
            prefix=prefix,
            key_hash=hash_secret(key),
            role_name=data.role,
            created_by=created_by,
            created_by_key=created_by_key,
            expires_at=data.expires_at,
        )
        session.add(row)
        await session.flush()
        return row, key

    async def list_api_keys(
        self, session: AsyncSession, page: PageParams, actor: Principal | None = None
    ) -> tuple[list[ApiKey], str | None]:
        """The keys ``actor`` may manage: those of a role whose every permission they hold
        (as revoking one needs), and those they made (through their keys too). A key's
        name, role, creator and use are no business of one who cannot touch it."""
        if actor is None or EVERYTHING in actor.permissions:
            return await repo.list_api_keys(session, page)
        grants = await repo.permissions_of_roles(
            session, [r.name for r in await repo.list_roles(session)]
        )
        held = frozenset(actor.permissions)
        roles = [name for name, wanted in grants.items() if not missing(held, wanted)]
        return await repo.list_api_keys(session, page, roles, acting_user(actor))

    async def revoke_api_key(
        self, session: AsyncSession, key_id: uuid.UUID, actor: Principal | None = None
    ) -> None:
        """Revoke the key and every key made with it: only a caller who holds the key's
        role (as they would to make it), so nobody switches off a stronger key."""
        row = await repo.api_key(session, key_id)
        if row is None:
            raise ApiKeyNotFound(f"no API key {key_id}")
        await self._require_grantable(session, actor, [row.role_name])
        wanted = await self._permissions_of(session, [row.role_name]) | {"auth:api_keys"}
        what = f"revoking a key of role {row.role_name!r}"
        await self._require_holds_as_stored(session, actor, wanted, what)
        await self._revoke_keys(session, [row], "revoked")


_GRANTING = "granting auth:users or * (making an administrator)"


def _administers(held: Iterable[str]) -> bool:
    """Whether permissions ``held`` make an administrator: one who manages users."""
    return any(p in (EVERYTHING, "auth:users") for p in held)


def _grants_administration(before: Iterable[str], after: Iterable[str]) -> bool:
    """Whether going from ``before`` to ``after`` adds ``auth:users`` or ``*`` that
    ``before`` did not already cover (``*`` covers everything)."""
    held = set(before)
    return EVERYTHING not in held and _administers(set(after) - held)


def _both(one: frozenset[str], other: frozenset[str]) -> frozenset[str]:
    """What two permission sets both grant, ``*`` standing for everything."""
    if EVERYTHING in one:
        return other
    if EVERYTHING in other:
        return one
    return one & other


def _may_make(held: frozenset[str], wanted: Iterable[str]) -> bool:
    """Whether one holding ``held`` could make a key whose role grants ``wanted``."""
    return (EVERYTHING in held or "auth:api_keys" in held) and not missing(held, wanted)


# Long enough to copy the key shown once into its integration, short enough for a test key.
MIN_KEY_LIFETIME = timedelta(seconds=60)


def _require_future_expiry(expires_at: datetime | None) -> None:
    """422 for a key that would be born expired, or expire before anyone could use it:
    it was made, shown once and never worked."""
    if expires_at is not None and expires_at < utcnow() + MIN_KEY_LIFETIME:
        raise ExpiryPassed(
            f"expires_at {expires_at.isoformat()} is past or less than "
            f"{MIN_KEY_LIFETIME.seconds} seconds away (a key lives at least that long); "
            "set a later time, or leave it out for a key that does not expire"
        )


def _require_within_expiry(actor: Principal | None, expires_at: datetime | None) -> None:
    """403 when a key made with an expiring key would outlive it: its expiry is
    something the maker holds only so long, like its permissions."""
    if actor is None or actor.kind != "api_key":
        return
    ends = actor.attributes.get("expires_at")
    if not isinstance(ends, float):
        return
    if expires_at is None or expires_at.timestamp() > ends:
        raise PrivilegeEscalation(
            "a key made with an API key expires no later than that key "
            f"({datetime.fromtimestamp(ends, UTC).isoformat()}): set expires_at to that or sooner"
        )
