"""Hello's business rules: decides and raises, never commits (the request does).

Services take the principal, repositories the visibility: ``GREETINGS`` turns
the one into the other with hello's record rule.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm2_core.api import (
    CsvColumns,
    RecordRules,
    Records,
    export_list,
    resolve_owner,
    user_emails,
)
from crm2_hello import repository as repo
from crm2_hello.models import Greeting
from crm2_hello.schemas import GreetingCreate, GreetingUpdate
from crm2_hookspecs import Principal

# Holders of hello:all_records see every greeting; anyone else sees their own
# (an API key acts for the user who created it). One rule for get, list and export.
RULES = RecordRules("hello:all_records")
GREETINGS = Records(repo.greetings, RULES)
get_greeting = GREETINGS.get  # 404 when missing or not visible: the same answer
delete_greeting = GREETINGS.delete  # checks If-Match when sent
# The list as the caller may see it: (session, principal, filters, sort, page).
list_greetings = GREETINGS.lister(repo.list_greetings)

# The export's header; bump the version whenever the columns or their order change.
EXPORT = CsvColumns(("id", "name", "message", "owner_email", "created_at"), version=1)


async def create_greeting(
    session: AsyncSession, principal: Principal, data: GreetingCreate, word: str
) -> Greeting:
    # The caller unless another owner is asked for: that needs all_records (403)
    # and an active user (422), the same rule in every plugin.
    owner = await resolve_owner(
        session, principal, GREETINGS.visibility(principal, session), data.owner_id
    )
    greeting = Greeting(name=data.name, message=f"{word}, {data.name}!", owner_id=owner)
    return await repo.greetings.add(session, greeting)


async def update_greeting(
    session: AsyncSession,
    principal: Principal,
    greeting_id: uuid.UUID,
    if_match: str,
    data: GreetingUpdate,
) -> Greeting:
    current = await GREETINGS.for_update(session, principal, greeting_id, if_match)  # 412 if stale
    values = data.model_dump(exclude_unset=True)
    if "owner_id" in values:
        values["owner_id"] = await resolve_owner(
            session,
            principal,
            GREETINGS.visibility(principal, session),
            values["owner_id"],
            current=current.owner_id,
        )
    await repo.greetings.update(session, current, values)  # one version bump, if any change
    return current


async def _export_rows(session: AsyncSession, items: list[Greeting]) -> list[Sequence[Any]]:
    emails = await user_emails(session, {g.owner_id for g in items})
    return [(g.id, g.name, g.message, emails.get(g.owner_id, ""), g.created_at) for g in items]


def export_greetings(
    session_factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    filters: repo.GreetingFilters,
    sort: str,
) -> AsyncIterator[str]:
    """The list as CSV chunks, one keyset page at a time (formula-safe cells)."""
    visibility = RULES.in_session(session_factory, principal)  # its hooks, as a request's
    return export_list(
        session_factory, EXPORT, repo.list_greetings, visibility, filters, sort, _export_rows
    )
