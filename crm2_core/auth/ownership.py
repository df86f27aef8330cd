"""Records that point at a user: why a delete is refused, and how to hand them over.

Found generically: every column of an enabled plugin's table with a foreign key
into ``auth_user.id`` that neither cascades nor nulls itself on delete (the
database would refuse the delete) is counted for the user. Nothing to declare:
a plugin's ``owner_id`` column is enough for the 409 to name it.

Handing over is the plugins' own business (their rules, versions and events):
``POST /api/v1/auth/users/{id}/reassign`` calls ``crm2_reassign_user`` on every
enabled plugin, then looks again; whatever is still there is named in a 409.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm2_core.context import AppContext

import inspect
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from crm2_core.auth.errors import UserOwnsRecords
from crm2_hookspecs import Principal

USER_TABLE = "auth_user"
SELF_CLEANING = {"CASCADE", "SET NULL", "SET DEFAULT"}


@dataclass(frozen=True)
class Reference:
    plugin: str
    table: str
    column: str
    count: int

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def _columns(context: AppContext) -> list[tuple[str, Column[Any]]]:
    """(plugin, column) for each enabled table's column that blocks deleting a user."""
    found = []
    for table in SQLModel.metadata.sorted_tables:
        plugin = str(table.info.get("plugin", ""))
        if not plugin or not context.is_enabled(plugin) or table.name == USER_TABLE:
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name != USER_TABLE:
                continue
            if (fk.ondelete or "").upper() in SELF_CLEANING:
                continue
            found.append((plugin, fk.parent))
    return found


async def user_references(
    context: AppContext, session: AsyncSession, user_id: uuid.UUID
) -> list[Reference]:
    """What still points at ``user_id``, one entry per (table, column) with a count > 0."""
    references = []
    for plugin, column in _columns(context):
        count = (
            await session.execute(
                select(func.count()).select_from(column.table).where(column == user_id)
            )
        ).scalar_one()
        if count:
            references.append(Reference(plugin, column.table.name, column.name, int(count)))
    return references


def owns_records(user_id: uuid.UUID, references: list[Reference]) -> UserOwnsRecords:
    listed = ", ".join(f"{r.name} ({r.count})" for r in references)
    return UserOwnsRecords(
        f"user {user_id} still owns records: {listed}; hand them to someone else with "
        f"POST /api/v1/auth/users/{user_id}/reassign, then delete",
        owned=[r.__dict__ for r in references],
    )


async def reassign(
    context: AppContext,
    session: AsyncSession,
    from_user: uuid.UUID,
    to_user: uuid.UUID,
    actor: Principal | None,
) -> dict[str, int]:
    """Every enabled plugin hands ``from_user``'s records to ``to_user``; counts by table."""
    moved: dict[str, int] = {}
    for _plugin, result in context.plugins.call(
        "crm2_reassign_user",
        from_user=from_user,
        to_user=to_user,
        session=session,
        actor=actor,
        context=context,
    ):
        if inspect.isawaitable(result):
            result = await result
        for table, count in (result or {}).items():
            moved[table] = moved.get(table, 0) + int(count)
    left = await user_references(context, session, from_user)
    if left:
        raise UserOwnsRecords(
            "no enabled plugin hands over these records: "
            + ", ".join(f"{r.name} ({r.count})" for r in left),
            owned=[r.__dict__ for r in left],
            moved=moved,
        )
    return moved
