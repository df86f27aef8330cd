"""Record-level visibility: who sees which rows, one rule for queries and live streams.

A plugin declares its rule once (``RecordRules("deals:all_records")``). Holders
of that permission see every record; anyone else sees the records they own (an
API key acts for the user who created it). Repositories take the resulting
``Visibility`` and apply it in SQL, so get (404), list, export, counts and the
SSE ``can_see`` agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from sqlalchemy import true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm2_core.auth.privileges import acting_user as acting_user  # re-exported: the kit's rule
from crm2_core.http.principal import permitted
from crm2_core.sse_audience import audience_rule
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext


@dataclass(frozen=True)
class Visibility:
    """``owner_id is None`` means every record; otherwise only that owner's."""

    owner_id: uuid.UUID | None

    @classmethod
    def system(cls) -> Visibility:
        """Jobs, handlers and seeds: every record."""
        return cls(owner_id=None)

    @property
    def unrestricted(self) -> bool:
        return self.owner_id is None

    def where(self, owner_column: Any) -> Any:
        """A WHERE clause on an ``owner_id`` column (``TRUE`` when unrestricted)."""
        return true() if self.owner_id is None else owner_column == self.owner_id

    def allows(self, owner_id: uuid.UUID | None) -> bool:
        return self.owner_id is None or self.owner_id == owner_id

    def allows_event(self, event: Any) -> bool:
        """Whether the event is about one of the visible records: its data's ``owner_id``,
        or its ``previous_owner_id`` (an event that hands a record over tells the owner it
        left as well as the one it came to, or the first keeps a stale copy)."""
        if self.owner_id is None:
            return True
        data = _event_data(event)
        mine = str(self.owner_id)
        return any(
            data.get(key) is not None and str(data[key]) == mine
            for key in ("owner_id", "previous_owner_id")
        )


def _event_data(event: Any) -> Mapping[str, Any]:
    data = event.get("data") if isinstance(event, Mapping) else getattr(event, "data", None)
    return data if isinstance(data, Mapping) else {}


def session_application(
    session: AsyncSession | async_sessionmaker[AsyncSession],
) -> AppContext:
    """The application whose session (or session factory) this is: its hooks judge."""
    if isinstance(session, AsyncSession):
        sessions: Any = session.sync_session
    else:
        sessions = session.kw.get("sync_session_class")
    application: AppContext | None = getattr(sessions, "application", None)
    if application is None:
        # a quiet "roles only" here would let a principal a hook denies past it
        raise RuntimeError(
            "this session belongs to no application (AppContext.session_factory's "
            "sessions do): its permission hooks cannot be asked"
        )
    return application


def permitted_in_session(
    session: AsyncSession | async_sessionmaker[AsyncSession],
    principal: Principal,
    permission: str,
    resource: object | None = None,
) -> bool:
    """Whether ``principal`` holds ``permission`` as a route's check judges it: granted by
    their roles and denied by no ``crm2_check_permission`` hook of the session's
    application. For code that runs with a session and no request (another plugin's
    hook implementation, a service); in process, no read."""
    return permitted(session_application(session), principal, permission, resource)


@dataclass(frozen=True)
class RecordRules:
    """A plugin's visibility rule: ``all_records`` is the permission that lifts it."""

    all_records: str

    @overload
    def visibility(self, principal: None) -> Visibility: ...
    @overload
    def visibility(self, principal: Principal | None, context: AppContext) -> Visibility: ...
    @overload
    def visibility(
        self, principal: Principal | None, *, roles_only: Literal[True]
    ) -> Visibility: ...
    def visibility(
        self,
        principal: Principal | None,
        context: AppContext | None = None,
        *,
        roles_only: bool = False,
    ) -> Visibility:
        """``None`` is the system (jobs, handlers): every record.

        ``context``: the application, whose ``crm2_check_permission`` hooks may veto
        ``all_records`` as they veto it in a request's check (and as ``user_grants(...,
        hooks=True)`` does for an owner). In process, no read. A caller without one
        says so (``roles_only=True``: the roles alone decide), or a new call site would
        quietly let a principal a hook denies see every record; with a session, use
        :meth:`in_session`."""
        if principal is None:
            return Visibility.system()
        if context is None and not roles_only:
            raise TypeError(
                f"RecordRules({self.all_records!r}).visibility needs the application "
                "context (its permission hooks may deny the rule's lift): pass it, use "
                "in_session(session, principal), or say roles_only=True"
            )
        if principal.has_permission(self.all_records) and (
            context is None or permitted(context, principal, self.all_records)
        ):
            return Visibility.system()
        return Visibility(owner_id=acting_user(principal))

    def in_session(
        self,
        session: AsyncSession | async_sessionmaker[AsyncSession],
        principal: Principal | None,
    ) -> Visibility:
        """:meth:`visibility` with the hooks of the application whose session (or
        session factory: an export's) it is."""
        if principal is None:
            return Visibility.system()
        return self.visibility(principal, session_application(session))

    @audience_rule
    async def can_see(self, principal: Principal, event: Any, context: Any = None) -> bool:
        """An ``SseChannel.can_see``: events carry ``owner_id`` in their data, so no query.

        The streams recognise it and evaluate it without awaiting, once per event and
        distinct ``visibility`` (``crm2_core.streams.channels``).
        """
        return self.stream_sees(self.stream_audience(principal, context), event)

    def stream_audience(self, principal: Principal, context: Any = None) -> Visibility:
        """The streams pass their application; a direct call without one (a unit
        test's) asks the roles alone."""
        if context is None:
            return self.visibility(principal, roles_only=True)
        return self.visibility(principal, context)

    def stream_sees(self, audience: Visibility, event: Any) -> bool:
        return audience.allows_event(event)
