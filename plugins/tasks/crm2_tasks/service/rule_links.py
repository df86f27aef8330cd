"""An automation rule's ``link``: checked when the rule is saved, as a task's own link is.

A rule's link names a record kind (``deals.deal``) and an id, usually a template filled
from the event (``{subject}``). Its kind must be one an enabled plugin answers
``crm2_resolve_entity`` for, and a fixed id must name a record that exists and that the
admin saving the rule may see; otherwise every task the rule made would carry a link
nobody can follow. A templated id can only be known when the event comes.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import resolve_entity
from crm2_hookspecs import Principal
from crm2_tasks.automation import PLACEHOLDER
from crm2_tasks.errors import InvalidRule

# the id a kind's owner is asked about to learn that it owns the kind: no record has it
_NO_RECORD = str(uuid.UUID(int=0))


async def kind_provided(context: Any, kind: str, session: AsyncSession) -> bool:
    """Whether an enabled plugin answers for ``kind``. By ``crm2_resolve_entity``'s
    contract a plugin returns ``None`` for a kind that is not its own and an awaitable for
    one that is, so the first answer, whatever it resolves to, names the owner."""
    answer = context.plugins.first_answer(
        "crm2_resolve_entity",
        kind=kind,
        id=_NO_RECORD,
        principal=None,
        context=context,
        session=session,
    )
    if answer is None:
        return False
    _plugin, result = answer
    if inspect.isawaitable(result):
        await result  # the owner's lookup of a record that does not exist: None
    return True


async def check_link(
    session: AsyncSession,
    context: Any,
    actor: Principal | None,
    link: Mapping[str, Any] | None,
) -> None:
    """422 ``tasks-invalid-rule`` for a link no enabled plugin can resolve (see the module)."""
    if not link:
        return
    kind, ident = str(link["kind"]), str(link["id"]).strip()
    if not await kind_provided(context, kind, session):
        raise InvalidRule(
            f"link kind {kind!r} is a record type no enabled plugin provides "
            "(crm2_resolve_entity answers for none)"
        )
    if PLACEHOLDER.search(ident):
        return  # filled from each event: known only then
    try:
        record_id = uuid.UUID(ident)
    except ValueError:
        raise InvalidRule(
            f"link id {ident!r} is neither a record id nor a template such as {{subject}}"
        ) from None
    if await resolve_entity(context, kind, record_id, actor, session) is None:
        raise InvalidRule(f"link: no {kind} {record_id} that you can see")
