"""The hooks deals offers other plugins: veto a change, add timeline entries, add fields.

Listed in the manifest's ``hookspecs``; documented in docs/plugins/hooks.md
("Hooks offered by plugins"). A plugin that implements them without depending
on deals marks them ``@hookimpl(optionalhook=True)``: with deals absent they
are simply never called. Nothing here needs importing to implement a hook:
``change`` is read by attribute, ``deal`` is a plain mapping.

Versioning: a hook's name and parameters are kept; new parameters are added
(implementations may take fewer), never renamed or removed within a major
version of crm2-deals.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from crm2_hookspecs import Crm2Context, Principal, hookspec


@dataclass(frozen=True)
class DealChange:
    """A change deals is about to make, as ``crm2_deals_validate_change`` sees it.

    :param action: ``create``, ``update`` or ``move``.
    :param deal_id: the deal's id (a new deal's id too).
    :param before: the deal's fields before the change (empty for ``create``).
    :param after: the fields as they will be (``value`` as a decimal string).
    :param to_stage: for ``move`` (and ``create``): the target stage's ``id``, ``name``, ``kind``.
    """

    action: Literal["create", "update", "move"]
    deal_id: uuid.UUID
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    to_stage: Mapping[str, Any] | None = None
    changed: tuple[str, ...] = field(default=())


class DealsSpec:
    """Hook specifications of the deals plugin."""

    @hookspec
    def crm2_deals_validate_change(
        self, change: DealChange, session: Any, principal: Principal, context: Crm2Context
    ) -> Awaitable[str | None] | str | None:
        """Veto a deal being created, changed or moved to another stage.

        Called whenever deals' service creates, changes or moves a deal (REST,
        event handlers, CLI commands, each deal of an owner hand-over) before
        anything is written, inside the caller's transaction (read with
        ``session``, never commit it). Return a reason (a string) to refuse: the
        request answers 422 ``deals-change-vetoed`` naming your plugin and the
        reason. Return ``None`` to allow.

        :param change: what is about to change.
        :param session: the request's database session (read only).
        :param principal: who asks.
        :param context: the running application.
        :returns: ``None`` to allow, a reason to refuse (or an awaitable of either).
        """
        raise NotImplementedError

    @hookspec
    def crm2_deals_timeline(
        self, deal: Mapping[str, Any], session: Any, principal: Principal, context: Crm2Context
    ) -> Awaitable[Sequence[Mapping[str, Any]]] | Sequence[Mapping[str, Any]] | None:
        """Contribute entries to ``GET /api/v1/deals/deals/{id}/timeline``.

        Each entry is a mapping with ``at`` (an aware datetime), ``title`` and
        optionally ``kind`` and ``link`` (``{"kind": "tasks.task", "id": …}``);
        deals adds ``source`` (your plugin's name). Show only what ``principal``
        may see.

        :param deal: the deal as ``GET /deals/{id}`` shows it.
        :param session: the request's database session: read with it (on SQLite a second
            session would wait for this one), never commit.
        :param principal: who asks.
        :param context: the running application.
        :returns: the entries (or an awaitable of them).
        """
        raise NotImplementedError

    @hookspec
    def crm2_deals_extra_fields(
        self, deal: Mapping[str, Any], session: Any, principal: Principal, context: Crm2Context
    ) -> Awaitable[Mapping[str, Any]] | Mapping[str, Any] | None:
        """Contribute fields shown with a deal: ``GET /api/v1/deals/deals/{id}/extra``.

        The answer appears under your plugin's name (``{"tasks": {"open_tasks": 2}}``),
        so plugins never overwrite each other's fields. Values must be JSON.

        :param deal: the deal as ``GET /deals/{id}`` shows it.
        :param session: the request's database session: read with it (on SQLite a second
            session would wait for this one), never commit.
        :param principal: who asks.
        :param context: the running application.
        :returns: the fields (or an awaitable of them).
        """
        raise NotImplementedError
