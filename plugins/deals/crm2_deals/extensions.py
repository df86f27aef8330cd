"""Calling the hooks deals offers (``hookspecs.py``) and combining their answers."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crm2_deals.errors import ChangeVetoed
from crm2_deals.hookspecs import DealChange
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.api import AppContext


async def _answers(context: AppContext, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
    answers = []
    for plugin, result in context.plugins.call(hook, context=context, **kwargs):
        value = await result if inspect.isawaitable(result) else result
        if value is not None:
            answers.append((plugin, value))
    return answers


def vetting(context: AppContext) -> bool:
    """Does any plugin implement ``crm2_deals_validate_change``? Without one, a hot path
    need not build the change's snapshots for no one to read."""
    caller = getattr(context.plugins.pm.hook, "crm2_deals_validate_change", None)
    return caller is not None and bool(caller.get_hookimpls())


async def vet(context: AppContext, session: Any, principal: Principal, change: DealChange) -> None:
    """422 ``deals-change-vetoed`` when any plugin refuses the change (the first one is named).

    Every path that creates or changes a deal calls this: the service's ``create_deal``,
    ``update_deal`` and ``move_deal`` (REST, handlers, CLI) and the owner hand-over.
    """
    for plugin, reason in await _answers(
        context, "crm2_deals_validate_change", change=change, session=session, principal=principal
    ):
        raise ChangeVetoed(f"{plugin} refused this change: {reason}")


async def timeline(
    context: AppContext, session: Any, deal: Mapping[str, Any], principal: Principal
) -> list[dict[str, Any]]:
    """Every plugin's entries, each marked with its ``source``, newest first."""
    entries: list[dict[str, Any]] = []
    for plugin, items in await _answers(
        context, "crm2_deals_timeline", deal=deal, session=session, principal=principal
    ):
        entries.extend({**item, "source": plugin} for item in items)
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries


async def extra_fields(
    context: AppContext, session: Any, deal: Mapping[str, Any], principal: Principal
) -> dict[str, dict[str, Any]]:
    """``{plugin: its fields}`` for every plugin that contributes fields."""
    return {
        plugin: dict(fields)
        for plugin, fields in await _answers(
            context, "crm2_deals_extra_fields", deal=deal, session=session, principal=principal
        )
    }
