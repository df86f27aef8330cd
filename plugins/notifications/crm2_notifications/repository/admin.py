"""Rules and webhook subscriptions: admin tables without an owner."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, literal, null, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import Repository, Sorts, Visibility, execute_in_session, folded
from crm2_notifications.errors import RuleNotFound, WebhookNotFound
from crm2_notifications.models import Rule, Webhook

ADMIN = Visibility.system()


def _by_name(model: Any) -> Sorts:
    return Sorts({"name": model.name}, id_column=model.id, default="name")


RULES = Repository(Rule, RuleNotFound, sorts=_by_name(Rule), noun="rule")
WEBHOOKS = Repository(Webhook, WebhookNotFound, sorts=_by_name(Webhook), noun="webhook")


async def name_taken(
    session: AsyncSession, model: type[Rule] | type[Webhook], name: str, other: uuid.UUID | None
) -> bool:
    # folded on both sides, in SQL: one folding rule for either database (see ``folded``)
    same_name = folded(col(model.name)) == folded(literal(name))
    stmt = select(exists().where(same_name, col(model.id) != other))
    return bool((await session.execute(stmt)).scalar())


# Built once: the rules handler reads these for every event (or batch of events), and
# a statement object reused keeps its SQLAlchemy cache key (building and keying it cost
# as much CPU as running it).
_RULES_FOR_TYPE = (
    select(Rule)
    .where(col(Rule.event_type) == bindparam("event_type"), col(Rule.enabled).is_(True))
    .order_by(col(Rule.name))
)
_RULES_FOR_TYPES = (
    select(Rule)
    .where(
        col(Rule.event_type).in_(bindparam("event_types", expanding=True)),
        col(Rule.enabled).is_(True),
    )
    .order_by(col(Rule.name))
)
_ACTIVE_WEBHOOKS = select(Webhook).where(col(Webhook.active).is_(True))
# What could apply to an event of a type, in one plain read: each enabled rule on the type
# (its plugin, its conditions) and each active webhook (its patterns, as ``conditions``).
_APPLICABLE = union_all(
    select(
        literal(True).label("is_rule"),
        col(Rule.plugin).label("plugin"),
        col(Rule.conditions).label("conditions"),
    ).where(col(Rule.event_type) == bindparam("event_type"), col(Rule.enabled).is_(True)),
    select(literal(False), null(), col(Webhook.event_types)).where(col(Webhook.active).is_(True)),
).subquery()
_WHAT_APPLIES = select(_APPLICABLE.c.is_rule, _APPLICABLE.c.plugin, _APPLICABLE.c.conditions)


async def rules_for(session: AsyncSession, event_type: str) -> Sequence[Rule]:
    """The enabled rules on ``event_type``, by name."""
    params = {"event_type": event_type}
    return list((await session.execute(_RULES_FOR_TYPE, params)).scalars())


async def rules_for_types(session: AsyncSession, event_types: Iterable[str]) -> Sequence[Rule]:
    """The enabled rules on any of ``event_types``, by name."""
    params = {"event_types": sorted(event_types)}
    return list((await session.execute(_RULES_FOR_TYPES, params)).scalars())


async def what_applies_to(
    session: AsyncSession, event_type: str
) -> list[tuple[bool, str | None, list[Any]]]:
    """``(True, plugin, conditions)`` for each enabled rule on ``event_type`` and
    ``(False, None, patterns)`` for each active webhook, in one plain read (no ``BEGIN``
    before a transaction's first write)."""
    rows = await execute_in_session(
        session, _WHAT_APPLIES, {"event_type": event_type}, reads_only=True
    )
    return [(bool(is_rule), plugin, list(found or ())) for is_rule, plugin, found in rows]


async def builtin_keys(session: AsyncSession) -> set[str]:
    stmt = select(col(Rule.builtin_key)).where(col(Rule.builtin_key).is_not(None))
    return {k for k in (await session.execute(stmt)).scalars() if k}


async def enabled_rules(session: AsyncSession) -> Sequence[Rule]:
    stmt = select(Rule).where(col(Rule.enabled).is_(True)).order_by(col(Rule.name))
    return list((await session.execute(stmt)).scalars())


async def active_webhooks(session: AsyncSession) -> Sequence[Webhook]:
    return list((await session.execute(_ACTIVE_WEBHOOKS)).scalars())


async def switch_off_webhook(
    session: AsyncSession, webhook_id: uuid.UUID, reason: str, now: datetime
) -> None:
    """Switch an active subscription off, with the reason, as a versioned change."""
    await session.execute(
        update(Webhook)
        .where(col(Webhook.id) == webhook_id, col(Webhook.active).is_(True))
        .values(
            active=False,
            disabled_reason=reason,
            updated_at=now,
            version=col(Webhook.version) + 1,
        )
    )
