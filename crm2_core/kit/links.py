"""Links to other plugins' records, through ``crm2_resolve_entity`` (never an import).

The answering side: a plugin's ``crm2_resolve_entity`` returns
``EntityResolver(rules, {"deals.client": clients.resolver(summary), …})(kind, id,
principal, context)``. The asking side: a request schema holds an ``EntityLink``
(``{"kind": "deals.deal", "id": "…"}``) and the service calls ``require_entity``
with the caller, so a link to a record the caller may not see is refused like a
missing one. The caller passes its session, and the answer is read in it.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.errors import Unprocessable
from crm2_core.kit.visibility import RecordRules, Visibility
from crm2_core.schemas import RequestModel
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext

EntityKind = Annotated[
    str,
    Field(
        min_length=3,
        max_length=64,
        pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
        description="<plugin>.<entity>, e.g. deals.client",
    ),
]
Resolve = Callable[[AsyncSession, Visibility, uuid.UUID], Awaitable[Mapping[str, Any] | None]]


class EntityLink(RequestModel):
    """A link to a record of any plugin: ``{"kind": "deals.deal", "id": "…"}``."""

    kind: EntityKind
    id: uuid.UUID


class LinkInvalid(Unprocessable):
    slug, title = "link-invalid", "The linked record does not exist or is not visible to you"


class EntityResolver:
    """The body of a plugin's ``crm2_resolve_entity`` hook."""

    def __init__(self, rules: RecordRules | None, kinds: Mapping[str, Resolve]) -> None:
        self.rules = rules
        self.kinds = dict(kinds)

    def __call__(
        self,
        kind: str,
        id: str,
        principal: Principal | None,
        context: AppContext,
        session: AsyncSession | None = None,
    ) -> Awaitable[Mapping[str, Any] | None] | None:
        resolve = self.kinds.get(kind)
        if resolve is None:
            return None  # not ours: pluggy asks the next plugin
        return self._run(resolve, id, principal, context, session)

    async def _run(
        self,
        resolve: Resolve,
        id: str,
        principal: Principal | None,
        context: AppContext,
        session: AsyncSession | None,
    ) -> Mapping[str, Any] | None:
        try:
            ident = uuid.UUID(str(id))
        except ValueError:
            return None
        if self.rules is not None:
            visibility = self.rules.visibility(principal, context)
        else:
            visibility = Visibility.system()
        if session is not None:
            return await resolve(session, visibility, ident)
        async with context.session_factory() as own:
            return await resolve(own, visibility, ident)


async def resolve_entity(
    context: AppContext,
    kind: str,
    id: uuid.UUID | str,
    principal: Principal | None,
    session: AsyncSession | None = None,
) -> Mapping[str, Any] | None:
    """The record ``kind``/``id`` as its plugin shows it to ``principal``; ``None`` if absent,
    hidden, or no enabled plugin answers for ``kind``.

    Pass the request's ``session``: the answer is read in it (it sees the
    request's own writes, and on SQLite never waits for the request's lock).
    """
    hook = context.plugins.pm.hook.crm2_resolve_entity
    answer = hook(kind=kind, id=str(id), principal=principal, context=context, session=session)
    if inspect.isawaitable(answer):
        answer = await answer
    return answer if isinstance(answer, Mapping) else None


async def require_entity(
    context: AppContext,
    link: EntityLink,
    principal: Principal | None,
    session: AsyncSession | None = None,
) -> Mapping[str, Any]:
    """:func:`resolve_entity`, or 422 ``link-invalid`` naming the link."""
    found = await resolve_entity(context, link.kind, link.id, principal, session)
    if found is None:
        raise LinkInvalid(f"no {link.kind} {link.id} that you can see")
    return found
