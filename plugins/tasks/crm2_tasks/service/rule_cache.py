"""The enabled automation rules, kept per process: no query per event to find none apply.

Every event an enabled plugin emits reaches the tasks handler (with the default
in-process broker, inside ``crm2 serve``, so a create of a deal or client paid for
it); reading the rules each time was one more round trip per event.

A rule change takes effect for every event relayed after it, in every process:

- each change publishes ``tasks.automation_rule.changed`` in its own transaction,
  so it has a position in the log;
- the cache hears the relayed events (``hear_relayed_events``, the live streams'
  hub) and keeps ``through``: the position up to which it heard every event, with
  no hole; hearing a rule change drops the rules;
- it answers for an event at position P only when it has rules, and heard every
  event before P (``through >= P - 1``); otherwise it reads the database: the
  log's top first, then the rules, so that every change at or below that top is
  in what it read, and ``through`` moves up to that top;
- a commit in this process that wrote rules through the ORM drops the rules at
  once as well (no wait for the relay);
- a process that hears nothing (``crm2 worker``: no hub feeds it) or missed events
  asks the log instead, in one read, whether a rule changed since ``through``: if
  not, ``through`` moves up to the log's top and the rules it keeps answer.

Without the streams plugin nothing is heard, and every event reads the rules (as
before this cache).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, String, bindparam, case, column, event, func, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from crm2_core.api import AppContext, Envelope, execute_in_session, hear_relayed_events
from crm2_tasks.automation import Condition, RuleError
from crm2_tasks.events import AutomationRuleChanged
from crm2_tasks.models import AutomationRule

# The core's event log, named (not imported): only its top position is read.
_event_log = table("core_event", column("position", BigInteger), column("type", String))
_WROTE_RULES = "crm2_tasks_wrote_rules"
_LOG_TOP = select(func.max(_event_log.c.position))
# How far the log went after ``since`` (at most ``until``), and the last rule change there
_LOG_SINCE = select(
    func.max(_event_log.c.position),
    func.max(case((_event_log.c.type == AutomationRuleChanged.event_type, _event_log.c.position))),
).where(
    _event_log.c.position > bindparam("since", type_=BigInteger),
    _event_log.c.position <= bindparam("until", type_=BigInteger),
)
# the most positions one such read goes through (a worker idle for a long time reloads)
_CATCH_UP_WINDOW = 10_000
_ENABLED_RULES = (
    select(
        col(AutomationRule.id),
        col(AutomationRule.name),
        col(AutomationRule.on_event),
        col(AutomationRule.conditions),
        col(AutomationRule.action),
    )
    .where(col(AutomationRule.enabled).is_(True))
    .order_by(col(AutomationRule.name))
)


@dataclass(frozen=True)
class ActiveRule:
    """An enabled rule as applied: its conditions parsed once, not per event."""

    id: uuid.UUID
    name: str
    conditions: tuple[Condition, ...]
    action: Mapping[str, Any]


def _active(
    id_: uuid.UUID, name: str, conditions: Sequence[Any], action: Mapping[str, Any]
) -> ActiveRule | None:
    try:
        parsed = tuple(Condition.parse(raw) for raw in conditions)
    except RuleError:
        return None  # stored before a stricter check; skipped rather than block the event
    return ActiveRule(id_, name, parsed, dict(action))


class _LocalWrites:
    """How many commits in this process wrote rules through the ORM."""

    count = 0


class RuleCache:
    def __init__(self) -> None:
        self.hears = False
        self._rules: dict[str, tuple[ActiveRule, ...]] | None = None
        self._through: int | None = None
        self._generation = 0  # moves on with every drop
        self._local = _LocalWrites.count
        self.loads = 0  # database reads of the rules (tests and figures)
        self.checks = 0  # reads of the log since ``through``

    def drop(self) -> None:
        self._rules = None
        self._generation += 1

    def tap(self, events: Sequence[Envelope]) -> None:
        for envelope in events:
            position = envelope.position
            if position is None:
                continue
            if envelope.type == AutomationRuleChanged.event_type:
                self.drop()
            if self._through is not None and position == self._through + 1:
                self._through = position
            # at or below ``through``: heard already; above ``through + 1``: a hole,
            # and ``through`` waits for the next read of the database

    def _fresh_for(self, position: int | None) -> dict[str, tuple[ActiveRule, ...]] | None:
        if self._local != _LocalWrites.count:
            self._local = _LocalWrites.count
            self.drop()
        rules = self._rules
        if rules is None or position is None or self._through is None:
            return None
        return rules if self._through >= position - 1 else None

    async def rules_for(
        self, session: AsyncSession, event_type: str, position: int | None
    ) -> tuple[ActiveRule, ...]:
        """The enabled rules ``on`` this event type, by name, as of the event's position."""
        return (await self.rules_by_type(session, position)).get(event_type, ())

    async def rules_by_type(
        self, session: AsyncSession, position: int | None
    ) -> Mapping[str, tuple[ActiveRule, ...]]:
        """Every enabled rule by the event type it is ``on``, as of ``position``."""
        rules = self._fresh_for(position)
        if rules is None and position is not None and self._rules is not None:
            rules = await self._catch_up(session, position)
        if rules is None:
            rules = await self._load(session)
        return rules

    async def _catch_up(
        self, session: AsyncSession, position: int
    ) -> dict[str, tuple[ActiveRule, ...]] | None:
        """The rules kept, for ``position``, when no rule changed in the log after
        ``through`` (one read; ``through`` moves up to what it saw); else ``None``."""
        since = self._through
        if since is None:
            return None
        generation, local = self._generation, _LocalWrites.count
        bounds = {"since": since, "until": since + _CATCH_UP_WINDOW}
        ((top, changed),) = await execute_in_session(session, _LOG_SINCE, bounds, reads_only=True)
        self.checks += 1
        if changed is not None:
            self.drop()
            return None
        if generation != self._generation or local != _LocalWrites.count:
            return None  # dropped meanwhile: what was seen may predate that drop
        if top is not None:
            # every position up to ``top`` is committed (the relay gives them in order)
            self._through = max(self._through or 0, int(top))
        return self._fresh_for(position)

    async def _load(self, session: AsyncSession) -> dict[str, tuple[ActiveRule, ...]]:
        # Two plain reads: before the handler's transaction (``skips``) they need no BEGIN
        generation, local = self._generation, _LocalWrites.count
        ((top,),) = await execute_in_session(session, _LOG_TOP, reads_only=True)
        grouped: dict[str, list[ActiveRule]] = {}
        for id_, name, on_event, conditions, action in await execute_in_session(
            session, _ENABLED_RULES, reads_only=True
        ):
            active = _active(id_, name, conditions, action)
            if active is not None:
                grouped.setdefault(on_event, []).append(active)
        rules = {on: tuple(found) for on, found in grouped.items()}
        self.loads += 1
        # A drop that arrived during the read may be newer than what was read: answer
        # with it this once, but do not keep it.
        if self.hears and generation == self._generation and local == _LocalWrites.count:
            self._rules = rules
            self._through = max(self._through or 0, int(top or 0))
        return rules


def rule_cache(context: Any) -> RuleCache:
    """This application's cache (a service on its context), hearing relayed events from
    its first use on; a context that is not an application's gets a cache that never
    keeps anything."""
    if not isinstance(context, AppContext):
        return RuleCache()
    cache = context.find(RuleCache)
    if cache is None:
        cache = RuleCache()
        context.provide(RuleCache, cache)
        cache.hears = hear_relayed_events(context, cache.tap)
    return cache


@event.listens_for(Session, "after_flush")
def _note_rule_writes(session: Session, _flush_context: Any) -> None:
    if any(
        isinstance(obj, AutomationRule) for obj in (*session.new, *session.dirty, *session.deleted)
    ):
        session.info[_WROTE_RULES] = True


@event.listens_for(Session, "after_commit")
def _drop_after_rule_writes(session: Session) -> None:
    if session.info.pop(_WROTE_RULES, False):
        _LocalWrites.count += 1


@event.listens_for(Session, "after_rollback")
def _forget_rule_writes(session: Session) -> None:
    session.info.pop(_WROTE_RULES, None)
