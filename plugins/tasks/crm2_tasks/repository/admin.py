"""Calendars, SLA policies and automation rules: small admin-managed tables."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import bindparam, column, exists, func, or_, select, table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import PageParams, Repository, Sorts, Visibility, execute_in_session
from crm2_tasks.errors import CalendarNotFound, NameTaken, RuleNotFound, SlaPolicyNotFound
from crm2_tasks.models import AutomationRule, Calendar, Series, SlaPolicy, Task, name_key

M = TypeVar("M", Calendar, SlaPolicy, AutomationRule)

# The core's user-role table, named (not imported): escalating to a role picks
# one of its active users. Plugins point at core tables by name (STYLE.md).
_user = table("auth_user", column("id"), column("is_active"))
_user_role = table("auth_user_role", column("user_id"), column("role_name"))
_role_permission = table("auth_role_permission", column("role_name"), column("permission"))
_role = table("auth_role", column("name"))


def _by_name(model: Any) -> Sorts:
    return Sorts({"name": model.name}, id_column=model.id, default="name")


CALENDARS = Repository(Calendar, CalendarNotFound, sorts=_by_name(Calendar), noun="calendar")
POLICIES = Repository(SlaPolicy, SlaPolicyNotFound, sorts=_by_name(SlaPolicy), noun="SLA policy")
RULES = Repository(AutomationRule, RuleNotFound, sorts=_by_name(AutomationRule), noun="rule")
_REPOSITORIES: dict[type, Repository[Any]] = {
    Calendar: CALENDARS,
    SlaPolicy: POLICIES,
    AutomationRule: RULES,
}
ADMIN = Visibility.system()  # admin tables have no owner


async def get(session: AsyncSession, model: type[M], row_id: uuid.UUID) -> M | None:
    row: M | None = await _REPOSITORIES[model].get(session, ADMIN, row_id)
    return row


async def page(
    session: AsyncSession, model: type[M], params: PageParams
) -> tuple[list[M], str | None]:
    repository = _REPOSITORIES[model]
    return await repository.page(session, repository.visible(ADMIN), params)


async def all_rows(session: AsyncSession, model: type[M]) -> list[M]:
    return list((await session.execute(select(model).order_by(model.name))).scalars())


@lru_cache(maxsize=32)
def _plain_select(model: type[Any], names: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
    """``plain_rows``' statement for ``model`` filtered on ``names``, built once (a task's
    create reads the SLA policies with it) with the values as parameters; and its keys."""
    columns = model.__table__.columns
    stmt = select(*columns).where(
        *(columns[name] == bindparam(f"plain_{name}", type_=columns[name].type) for name in names)
    )
    if "name" in columns:
        stmt = stmt.order_by(columns["name"])
    return stmt, tuple(column.key for column in columns)


async def plain_rows(session: AsyncSession, model: type[M], **equal: Any) -> list[M]:
    """``model``'s rows (those whose columns have the ``equal`` values), by name when it has
    one, in one plain read: before a transaction's first write it sends no ``BEGIN``."""
    stmt, keys = _plain_select(model, tuple(sorted(equal)))
    params = {f"plain_{name}": value for name, value in equal.items()}
    rows = await execute_in_session(session, stmt, params, reads_only=True)
    return [model.model_construct(**dict(zip(keys, row, strict=True))) for row in rows]


async def name_taken(
    session: AsyncSession, model: type[M], name: str, other_than: uuid.UUID | None = None
) -> bool:
    """Whether another row has this name in any case: the same ``name_key`` (NFC,
    case-folded in Python, so "Élan" and "élan" collide alike on both databases)."""
    table: Any = model  # a model with ``name_key`` and ``id`` columns
    stmt = select(exists().where(table.name_key == name_key(name), table.id != other_than))
    return bool((await session.execute(stmt)).scalar())


def _name_taken(exc: IntegrityError, model: type[Any], name: str) -> NameTaken | None:
    """The 409 for a write that lost a race for a name (the ``name_key`` constraint)."""
    if "name_key" not in str(exc.orig):
        return None
    noun = _REPOSITORIES[model].noun
    return NameTaken(f"another {noun} was just given the name {name!r} (in some case)")


async def insert(session: AsyncSession, row: M) -> M:
    """Insert an admin row; a concurrent create of the same name in any case, which passed
    the check beside this one, is a 409 ``tasks-name-taken`` (the ``name_key`` constraint)."""
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        taken = _name_taken(exc, type(row), row.name)
        if taken is None:
            raise
        raise taken from exc
    return row


async def update(
    session: AsyncSession, row: M, values: Mapping[str, Any], expected_version: int
) -> None:
    """A versioned write; a rename sets ``name_key`` too (409 as ``insert`` on a race)."""
    written = dict(values)
    if "name" in written:
        written["name_key"] = name_key(written["name"])
    try:
        await _REPOSITORIES[type(row)].update(
            session, row, written, expected_version=expected_version, only_changed=False
        )
    except IntegrityError as exc:
        taken = _name_taken(exc, type(row), str(written.get("name")))
        if taken is None:
            raise
        raise taken from exc


async def delete(session: AsyncSession, row: M, if_match: str | None) -> None:
    """Delete an admin row; a sent ``If-Match`` naming another version is 412 (also when an
    edit commits after the read: the version is a condition of the ``DELETE``)."""
    await _REPOSITORIES[type(row)].delete_if_match(session, row, if_match)


async def calendar_in_use(session: AsyncSession, calendar_id: uuid.UUID) -> bool:
    stmt = select(exists().where(col(SlaPolicy.calendar_id) == calendar_id))
    return bool((await session.execute(stmt)).scalar())


async def rules_for(session: AsyncSession, event_type: str) -> Sequence[AutomationRule]:
    stmt = (
        select(AutomationRule)
        .where(col(AutomationRule.on_event) == event_type, col(AutomationRule.enabled).is_(True))
        .order_by(col(AutomationRule.name))
    )
    return list((await session.execute(stmt)).scalars())


async def rule_by_key(session: AsyncSession, key: str) -> AutomationRule | None:
    stmt = select(AutomationRule).where(col(AutomationRule.builtin_key) == key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def role_exists(session: AsyncSession, role: str) -> bool:
    """Whether the core has a role of exactly this name (role names are case-sensitive)."""
    return bool((await session.execute(select(exists().where(_role.c.name == role)))).scalar())


async def least_busy_with_role(
    session: AsyncSession, role: str, permission: str
) -> uuid.UUID | None:
    """The active user holding ``role`` whose roles grant ``permission`` (any of them), with
    the fewest open tasks (ties: lowest id)."""
    open_tasks = (
        select(func.count())
        .select_from(Task)
        .where(col(Task.assignee_id) == _user.c.id, col(Task.is_open).is_(True))
        .scalar_subquery()
    )
    held = _user_role.alias("held")
    grants = exists().where(
        held.c.user_id == _user.c.id,
        _role_permission.c.role_name == held.c.role_name,
        or_(_role_permission.c.permission == permission, _role_permission.c.permission == "*"),
    )
    stmt = (
        select(_user.c.id)
        .join(_user_role, _user_role.c.user_id == _user.c.id)
        .where(_user_role.c.role_name == role, _user.c.is_active.is_(True), grants)
        .order_by(open_tasks, _user.c.id)
        .limit(1)
    )
    found = (await session.execute(stmt)).scalar()
    return found if isinstance(found, uuid.UUID) or found is None else uuid.UUID(str(found))


async def calendars_by_zone(session: AsyncSession) -> list[tuple[str, uuid.UUID, str]]:
    """Every calendar as ``(timezone, id, name)``: few rows, read at start-up."""
    rows = await session.execute(
        select(col(Calendar.timezone), col(Calendar.id), col(Calendar.name))
    )
    return [(zone, calendar_id, name) for zone, calendar_id, name in rows.all()]


async def series_zones(session: AsyncSession) -> list[tuple[str, int]]:
    """How many series each stored time zone has (one row per zone, read at start-up)."""
    rows = await session.execute(
        select(col(Series.timezone), func.count()).group_by(col(Series.timezone))
    )
    return [(zone, int(count)) for zone, count in rows.all()]


async def series_in_zone(session: AsyncSession, zone: str, limit: int) -> list[uuid.UUID]:
    rows = await session.execute(
        select(col(Series.id))
        .where(col(Series.timezone) == zone)
        .order_by(col(Series.id))
        .limit(limit)
    )
    return list(rows.scalars())
