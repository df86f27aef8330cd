"""Who a rule notifies: the record's owner / assignee (through ``crm2_resolve_entity``),
user ids in the event's data, everyone holding a role, a fixed user list.

``recipients`` of a rule::

    {"record": {"kind": "deals.deal", "id": "{{ subject }}"},  # resolved as the system
     "record_fields": ["owner_id", "assignee_id"],              # default
     "data_fields": ["owner_id"], "roles": ["manager"], "users": ["<uuid>", …]}
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import resolve_entity
from crm2_notifications import templates
from crm2_notifications.conditions import MISSING, lookup
from crm2_notifications.repository import people

DEFAULT_RECORD_FIELDS = ("owner_id", "assignee_id")


def _as_uuid(value: Any) -> uuid.UUID | None:
    if value is None or value is MISSING:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def record(
    context: Any, spec: Mapping[str, Any], envelope: Mapping[str, Any], session: AsyncSession
) -> Mapping[str, Any] | None:
    """The rule's record (as the system sees it, read in the handler's session), or ``None``."""
    link = spec.get("record")
    if not isinstance(link, Mapping) or not link.get("kind"):
        return None
    (ident,) = await templates.render_all(
        [str(link.get("id") or "{{ subject }}")], templates.variables(envelope, None)
    )
    if _as_uuid(ident.strip()) is None:
        return None
    return await resolve_entity(context, str(link["kind"]), ident.strip(), None, session)


async def resolve(
    session: AsyncSession,
    spec: Mapping[str, Any],
    envelope: Mapping[str, Any],
    found: Mapping[str, Any] | None,
) -> set[uuid.UUID]:
    users: set[uuid.UUID] = set()
    if found is not None:
        for name in spec.get("record_fields") or DEFAULT_RECORD_FIELDS:
            if (user := _as_uuid(found.get(name))) is not None:
                users.add(user)
    data = envelope.get("data") or {}
    for name in spec.get("data_fields") or ():
        if (user := _as_uuid(lookup(data, str(name)))) is not None:
            users.add(user)
    users |= await people.users_with_roles(session, spec.get("roles") or ())
    users |= {u for u in (_as_uuid(v) for v in spec.get("users") or ()) if u is not None}
    return users
