"""Rules as data: admins manage them; plugins ship defaults through a hook.

A rule is *active* when it is enabled, the plugin that shipped it (if any) is
enabled, and an enabled plugin declares its event type. Shipped rules are
stored once, at start-up, under ``<plugin>:<key>``; after that they belong to
the admins (a changed or disabled shipped rule stays as they left it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import check_version
from crm2_notifications import conditions, templates
from crm2_notifications.channels import registry
from crm2_notifications.errors import InvalidRule
from crm2_notifications.models import Rule
from crm2_notifications.repository import admin as repo
from crm2_notifications.schemas.rules import (
    NotificationRuleCreate,
    NotificationRulePublic,
    NotificationRuleUpdate,
)

log = logging.getLogger(__name__)


def declared_event_types(context: Any) -> set[str]:
    return {
        cls.event_type
        for _plugin, classes in context.plugins.call("crm2_event_types")
        for cls in classes
    }


def public(
    rule: Rule, context: Any, declared: Iterable[str] | None = None
) -> NotificationRulePublic:
    known = set(declared) if declared is not None else declared_event_types(context)
    active = (
        rule.enabled
        and rule.event_type in known
        and (rule.plugin is None or context.is_enabled(rule.plugin))
    )
    return NotificationRulePublic.model_validate(
        {**rule.model_dump(), "active": active, "problems": problems(rule.conditions)}
    )


def problems(when: Iterable[Mapping[str, Any]]) -> list[str]:
    """What makes stored conditions never hold: each condition as ``_check`` would refuse
    it now. Rules saved before a check existed are kept as their admins left them (no
    migration can guess the number meant by ``gt {...}``); they are flagged instead."""
    found = []
    for number, raw in enumerate(when, start=1):
        try:
            if not isinstance(raw, Mapping):  # a listing must not fail on odd stored data
                raise conditions.ConditionInvalid(f"condition {number} is not an object")
            conditions.check(raw, number)
        except conditions.ConditionInvalid as exc:
            found.append(str(exc))
    return found


async def warn_unusable_rules(context: Any) -> int:
    """Log a warning per enabled rule that can never fire (see ``problems``); how many."""
    async with context.session_factory() as session:
        stored = await repo.enabled_rules(session)
    count = 0
    for rule in stored:
        found = problems(rule.conditions)
        if found:
            count += 1
            log.warning(
                "notification rule %r (%s) can never fire: %s; change its conditions",
                rule.name,
                rule.id,
                "; ".join(found),
            )
    return count


def _template_sources(rule: Mapping[str, Any]) -> list[str]:
    """Every template of a rule: its texts, and the record's ``id`` (rendered per event to
    find the record; one that cannot render would make the rule reach nobody, silently)."""
    template = rule["template"]
    sources = [str(template.get(key) or "") for key in ("title", "body", "link")]
    record = (rule.get("recipients") or {}).get("record")
    if isinstance(record, Mapping) and record.get("id"):
        sources.append(str(record["id"]))
    return sources


async def _check(context: Any, rule: Mapping[str, Any], *, shipped: bool = False) -> None:
    """Refuse a rule that could never work. A shipped rule may name a channel of a plugin
    disabled here (it is skipped when sending); everything else is checked alike."""
    event_type, when, channels = rule["event_type"], rule["conditions"], rule["channels"]
    if event_type.startswith("notifications."):
        raise InvalidRule("rules react to other plugins' events, not to notifications' own")
    unknown = sorted(set(channels) - set(registry(context).names()))
    if unknown and not shipped:
        raise InvalidRule(
            f"unknown channel(s) {unknown}; this deployment has {registry(context).names()}"
        )
    try:
        for number, raw in enumerate(when, start=1):
            conditions.check(raw, number)
        # a trial render may take its budget: beside the event loop, not on it
        await templates.check_all(_template_sources(rule))
    except (conditions.ConditionInvalid, templates.TemplateInvalid) as exc:
        raise InvalidRule(str(exc)) from exc


def _values(data: NotificationRuleCreate) -> dict[str, Any]:
    return {
        "name": data.name,
        "event_type": data.event_type,
        "conditions": [c.model_dump() for c in data.conditions],
        "template": data.template.model_dump(),
        "recipients": data.recipients.model_dump(mode="json"),
        "channels": list(dict.fromkeys(data.channels)),
        "enabled": data.enabled,
    }


async def create_rule(session: AsyncSession, context: Any, data: NotificationRuleCreate) -> Rule:
    values = _values(data)
    await _check(context, values)
    if await repo.name_taken(session, Rule, data.name, None):
        raise InvalidRule(f"a rule is already called {data.name!r}")
    return await repo.RULES.add(session, Rule(**values))


async def update_rule(
    session: AsyncSession,
    context: Any,
    rule_id: uuid.UUID,
    if_match: str,
    data: NotificationRuleUpdate,
) -> Rule:
    rule = await repo.RULES.get_or_404(session, repo.ADMIN, rule_id)
    version = check_version(if_match, rule.version)
    sent = data.model_dump(exclude_unset=True, exclude_none=True, mode="json")
    if "name" in sent and await repo.name_taken(session, Rule, sent["name"], rule.id):
        raise InvalidRule(f"a rule is already called {sent['name']!r}")
    if "channels" in sent:
        sent["channels"] = list(dict.fromkeys(sent["channels"]))
    await _check(context, {**rule.model_dump(), **sent})
    await repo.RULES.update(session, rule, sent, expected_version=version, only_changed=False)
    return rule


async def delete_rule(session: AsyncSession, rule_id: uuid.UUID, if_match: str | None) -> None:
    rule = await repo.RULES.get_or_404(session, repo.ADMIN, rule_id)
    await repo.RULES.delete_if_match(session, rule, if_match)


def _shipped(plugin: str, raw: Mapping[str, Any]) -> Rule:
    """A shipped rule checked like an admin's (a bad one stops start-up, naming the plugin)."""
    try:
        data = NotificationRuleCreate.model_validate({k: v for k, v in raw.items() if k != "key"})
    except ValidationError as exc:
        raise InvalidRule(f"{plugin}: default rule {raw.get('key')!r}: {exc}") from exc
    key = str(raw.get("key") or "")
    if not key:
        raise InvalidRule(f"{plugin}: a default rule needs a 'key'")
    return Rule(**_values(data), builtin_key=f"{plugin}:{key}"[:100], plugin=plugin)


async def sync_default_rules(context: Any) -> int:
    """Store the enabled plugins' shipped rules that are not stored yet; returns how many."""
    wanted = [
        _shipped(plugin, raw)
        for plugin, raw in context.plugins.collect("crm2_notifications_default_rules")
    ]
    if not wanted:
        return 0
    added = 0
    async with context.session_factory() as session:
        have = await repo.builtin_keys(session)
        for rule in wanted:
            if rule.builtin_key in have:
                continue
            # checked as an admin's (templates, conditions) before it is stored: a bad one
            # stops start-up naming its plugin; a stored one is not checked (nor Jinja
            # imported) at every start
            try:
                await _check(context, rule.model_dump(), shipped=True)
            except InvalidRule as exc:
                key = rule.builtin_key
                raise InvalidRule(f"{rule.plugin}: default rule {key!r}: {exc}") from exc
            if await repo.name_taken(session, Rule, rule.name, None):
                rule.name = f"{rule.name} ({rule.plugin})"[:200]
            try:
                async with session.begin_nested():
                    session.add(rule)
                added += 1
            except IntegrityError:
                pass  # another process stored it first
        await session.commit()
    return added
