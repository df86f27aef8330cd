"""Automation rules: admins store them as data; events of other plugins apply them.

A rule is active when it is enabled and an enabled plugin declares its event
type; a rule for an unknown type is stored and reported inactive. Applying a
rule to an event creates at most one task per (rule, event): the core records
that the handler applied the event, and a unique key on the task
(``automation_rule_id``, ``source_event_id``) holds even if that record were lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import check_version, publish
from crm2_hookspecs import Principal
from crm2_tasks import automation, clock
from crm2_tasks.automation import Condition, DueIn, RuleError
from crm2_tasks.calendar import CalendarError, wall_instant, zone
from crm2_tasks.errors import InvalidRule, NameTaken, RuleNotFound
from crm2_tasks.events import AutomationRuleChanged
from crm2_tasks.models import AutomationRule
from crm2_tasks.repository import admin as repo
from crm2_tasks.repository import tasks as task_repo
from crm2_tasks.schemas.admin import (
    AutomationRuleCreate,
    AutomationRulePublic,
    AutomationRuleUpdate,
)
from crm2_tasks.service import assignees, rule_links
from crm2_tasks.service.calendars import default_calendar
from crm2_tasks.service.rule_cache import ActiveRule, rule_cache
from crm2_tasks.service.tasks import checked_link, new_task

logger = logging.getLogger(__name__)


def declared_event_types(context: Any) -> set[str]:
    """Every event type the enabled plugins declare (``crm2_event_types``)."""
    return {
        cls.event_type
        for _plugin, classes in context.plugins.call("crm2_event_types")
        for cls in classes
    }


def public(rule: AutomationRule, declared: Iterable[str]) -> AutomationRulePublic:
    return AutomationRulePublic.model_validate(
        {
            **rule.model_dump(),
            "on": rule.on_event,
            "when": rule.conditions,
            "create_task": rule.action,
            "active": rule.enabled and rule.on_event in set(declared),
        }
    )


def _check(context: Any, on: str, when: list[dict[str, Any]], action: dict[str, Any]) -> None:
    if on.startswith("tasks."):
        raise InvalidRule("rules react to other plugins' events, not to tasks' own")
    try:
        for number, raw in enumerate(when, 1):
            Condition.parse(raw, number)
        for key in ("title", "description", "assignee"):
            if action.get(key):
                automation.check_template(action[key])
        if action.get("link"):
            automation.check_template(action["link"]["id"])
        if action.get("due_in"):
            # computed once: "9999 business days" is past the calendar's ten-year horizon
            due_at(context, action["due_in"], clock.now(context))
    except RuleError as exc:
        raise InvalidRule(str(exc)) from exc
    except (CalendarError, OverflowError) as exc:
        raise InvalidRule(f"due_in {action['due_in']!r} is too far ahead: {exc}") from exc


async def _check_targets(
    session: AsyncSession, context: Any, actor: Principal | None, action: dict[str, Any]
) -> None:
    """What a rule's task points at, when fixed, as a task's own fields are checked: the
    link (``rule_links``) and an assignee that is no template, who must be a user who may
    be given tasks (a template is known only when the event comes)."""
    await rule_links.check_link(session, context, actor, action.get("link"))
    assignee = (action.get("assignee") or "").strip()
    if not assignee or automation.PLACEHOLDER.search(assignee):
        return
    try:
        user_id = uuid.UUID(assignee)
    except ValueError:
        raise InvalidRule(
            f"assignee {assignee!r} is neither a user id nor a template such as {{data.owner_id}}"
        ) from None
    await assignees.check(session, user_id, "create_task.assignee")


async def get_rule(session: AsyncSession, rule_id: uuid.UUID) -> AutomationRule:
    rule = await repo.get(session, AutomationRule, rule_id)
    if rule is None:
        raise RuleNotFound(f"no automation rule {rule_id}")
    return rule


def _changed(
    session: AsyncSession, rule: AutomationRule, change: str, actor: Principal | None
) -> None:
    """Every process's rule cache drops its rules when it hears this (``rule_cache``)."""
    event = AutomationRuleChanged(rule_id=rule.id, name=rule.name, change=change)
    publish(session, event, subject=rule.id, actor=actor)


async def create_rule(
    session: AsyncSession,
    context: Any,
    data: AutomationRuleCreate,
    *,
    actor: Principal | None = None,
) -> AutomationRule:
    when = [c.model_dump() for c in data.when]
    action = data.create_task.model_dump()
    _check(context, data.on, when, action)
    await _check_targets(session, context, actor, action)
    if await repo.name_taken(session, AutomationRule, data.name):
        raise NameTaken(f"a rule is already called {data.name!r}")
    rule = AutomationRule(
        name=data.name, on_event=data.on, conditions=when, action=action, enabled=data.enabled
    )
    added: AutomationRule = await repo.insert(session, rule)
    _changed(session, added, "created", actor)
    return added


async def update_rule(
    session: AsyncSession,
    context: Any,
    rule_id: uuid.UUID,
    if_match: str,
    data: AutomationRuleUpdate,
    *,
    actor: Principal | None = None,
) -> AutomationRule:
    rule = await get_rule(session, rule_id)
    version = check_version(if_match, rule.version)
    sent = data.model_dump(exclude_unset=True, exclude_none=True)
    values: dict[str, Any] = {}
    if "name" in sent:
        if await repo.name_taken(session, AutomationRule, sent["name"], rule.id):
            raise NameTaken(f"a rule is already called {sent['name']!r}")
        values["name"] = sent["name"]
    if "on" in sent:
        values["on_event"] = sent["on"]
    if "when" in sent:
        values["conditions"] = sent["when"]
    if "create_task" in sent:
        values["action"] = sent["create_task"]
    if "enabled" in sent:
        values["enabled"] = sent["enabled"]
    _check(
        context,
        values.get("on_event", rule.on_event),
        values.get("conditions", rule.conditions),
        values.get("action", rule.action),
    )
    if "action" in values:  # its link and assignee are checked as sent, as on create
        await _check_targets(session, context, actor, values["action"])
    if values:
        await repo.update(session, rule, values, version)
        _changed(session, rule, "updated", actor)
    return rule


async def delete_rule(
    session: AsyncSession,
    rule_id: uuid.UUID,
    if_match: str | None = None,
    *,
    actor: Principal | None = None,
) -> None:
    """Delete a rule; a sent ``If-Match`` must name its version (412 and no event if not)."""
    rule = await get_rule(session, rule_id)
    await repo.delete(session, rule, if_match)
    _changed(session, rule, "deleted", actor)


# -- applying rules to events -----------------------------------------------------------


def due_at(context: Any, spec: str | None, now: datetime) -> datetime | None:
    """``now`` plus a rule's ``due_in``. Minutes and hours are elapsed time; days and weeks
    are calendar days in ``CRM2_TASKS_TIMEZONE`` at the same wall time (RFC 5545's nominal
    day: "1 week" from Saturday 09:00 is the next Saturday 09:00 across a DST change), a
    wall time the day's DST gap skips being the jump (``calendar.wall_instant``)."""
    if not spec:
        return None
    due = DueIn.parse(spec)
    if due.business:
        return default_calendar(context).add_business(now, due.amount, due.unit)
    if due.unit == "days":
        tz = zone(context.plugin_settings("tasks").timezone)
        local = now.astimezone(tz)
        day = local.date() + timedelta(days=due.amount)
        return wall_instant(datetime.combine(day, local.time(), tzinfo=tz))
    return now + timedelta(**{due.unit: due.amount})


async def _assignee(
    session: AsyncSession, template: str | None, envelope: Mapping[str, Any]
) -> uuid.UUID | None:
    if not template:
        return None
    try:
        user_id = uuid.UUID(automation.render(template, envelope).strip())
    except ValueError:
        return None
    # nobody who could not see the task (inactive, or no tasks:read): it waits unassigned
    return user_id if await assignees.refusal(session, user_id) is None else None


async def apply_rules(
    session: AsyncSession,
    context: Any,
    envelope: Mapping[str, Any],
    event_id: uuid.UUID,
    position: int | None = None,
) -> list[uuid.UUID]:
    """Create the tasks the enabled rules for this event ask for; returns their ids.

    ``position``: the event's place in the log; with it the rules may come from this
    process's cache (``rule_cache``), without it they are read from the database.
    """
    rules = await rule_cache(context).rules_for(session, str(envelope.get("type")), position)
    return await _apply(session, context, rules, envelope, event_id)


async def no_rule_applies(
    session: AsyncSession,
    context: Any,
    event_type: str,
    position: int | None,
    envelope_of: Callable[[], Mapping[str, Any]],
) -> bool:
    """Would ``apply_rules`` create nothing for this event: no enabled rule ``on`` its type
    whose conditions it meets? Reads only, in plain reads (``rule_cache``: none while it
    is fresh, one of the log to find it still is, two to read the rules again);
    ``envelope_of()`` only when a rule is ``on`` the type."""
    rules = await rule_cache(context).rules_for(session, event_type, position)
    if not rules:
        return True
    envelope = envelope_of()
    return not any(automation.matches(rule.conditions, envelope) for rule in rules)


async def apply_rules_to_batch(
    session: AsyncSession,
    context: Any,
    events: Sequence[Any],
    envelope_of: Callable[[Any], Mapping[str, Any]],
) -> list[uuid.UUID]:
    """``apply_rules`` on each event (``.type``, ``.id``, ``.position``) in turn, the rules
    read once; ``envelope_of(event)`` only for the events a rule is ``on``.

    The rules are those as of the batch's last position (for each event, a point at or
    after it, as ``apply_rules`` answers too): a batch of events no rule is ``on``
    costs no query when the cache is fresh, one otherwise.
    """
    positions = [event.position for event in events]
    last = None if None in positions else max(positions)
    by_type = await rule_cache(context).rules_by_type(session, last)
    created: list[uuid.UUID] = []
    for event in events:
        rules = by_type.get(event.type, ())
        if rules:
            created += await _apply(session, context, rules, envelope_of(event), event.id)
    return created


async def _apply(
    session: AsyncSession,
    context: Any,
    rules: Sequence[ActiveRule],
    envelope: Mapping[str, Any],
    event_id: uuid.UUID,
) -> list[uuid.UUID]:
    created: list[uuid.UUID] = []
    if not rules:
        return created
    now = clock.now(context)
    for rule in rules:
        if not automation.matches(rule.conditions, envelope):
            continue
        if await task_repo.tasks_for_rule_event(session, rule.id, event_id):
            continue
        try:
            values = await _task_values(session, context, rule, envelope, event_id, now)
        except (ValueError, ArithmeticError) as exc:
            # A rule saved before its checks (or one the data trips up) makes no task for
            # this event; failing would roll back, and retry, every other rule's task too.
            logger.warning("tasks: rule %s made no task for event %s: %s", rule.id, event_id, exc)
            continue
        link, dropped = await checked_link(
            session, context, values["link_kind"], values["link_id"], values["assignee_id"]
        )
        values["link_kind"], values["link_id"] = link if link else (None, None)
        task = await new_task(
            session, context, actor=None, values=values, now=now, link_dropped=dropped
        )
        created.append(task.id)
    return created


async def _task_values(
    session: AsyncSession,
    context: Any,
    rule: ActiveRule,
    envelope: Mapping[str, Any],
    event_id: uuid.UUID,
    now: datetime,
) -> dict[str, Any]:
    action = rule.action
    link = action.get("link") or None
    link_id = automation.render(link["id"], envelope).strip() if link else ""
    return {
        "title": automation.render(action["title"], envelope)[:300] or rule.name,
        "description": automation.render(action.get("description") or "", envelope),
        "priority": action.get("priority") or "normal",
        "tags": list(action.get("tags") or []),
        "assignee_id": await _assignee(session, action.get("assignee"), envelope),
        "creator_id": None,
        "due_at": due_at(context, action.get("due_in"), now),
        "link_kind": link["kind"] if link and link_id else None,
        "link_id": link_id[:64] if link and link_id else None,
        "automation_rule_id": rule.id,
        "source_event_id": event_id,
        "status": "todo",
    }
