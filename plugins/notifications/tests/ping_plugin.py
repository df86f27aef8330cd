"""A throw-away plugin for the notifications tests: emits ``ping.thing.happened``, resolves
``ping.thing`` and ships one default rule through notifications' hook (without importing it)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from crm2_core.api import CurrentPrincipal, EventData, SessionDep, publish
from crm2_hookspecs import PluginManifest, Principal, hookimpl

manifest = PluginManifest(name="ping", title="Ping (notifications tests)")
# subject -> the record crm2_resolve_entity answers with
THINGS: dict[str, dict[str, Any]] = {}


class ThingHappened(EventData, type="ping.thing.happened", version=1):
    title: str
    value: int = 0
    owner_id: uuid.UUID | None = None


class ThingIn(BaseModel):
    title: str
    value: int = 0
    owner_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None


router = APIRouter(prefix="/api/v1/ping")


@router.post("/things", status_code=201)
async def happen(body: ThingIn, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    subject = str(uuid.uuid4())
    THINGS[subject] = {
        "kind": "ping.thing",
        "id": subject,
        "name": body.title,
        "owner_id": str(body.owner_id) if body.owner_id else None,
        "assignee_id": str(body.assignee_id) if body.assignee_id else None,
    }
    event = ThingHappened(title=body.title, value=body.value, owner_id=body.owner_id)
    row = publish(session, event, subject=subject, actor=principal)
    return {"event_id": str(row.id), "subject": subject}


@hookimpl
def crm2_event_types() -> Sequence[type]:
    return [ThingHappened]


@hookimpl
def crm2_routers() -> Sequence[APIRouter]:
    return [router]


@hookimpl
def crm2_resolve_entity(
    kind: str, id: str, principal: Principal | None, context: Any
) -> Awaitable[Mapping[str, Any] | None] | None:
    if kind != "ping.thing":
        return None

    async def answer() -> Mapping[str, Any] | None:
        return THINGS.get(id)

    return answer()


@hookimpl(optionalhook=True)
def crm2_notifications_default_rules() -> Sequence[Mapping[str, Any]]:
    return [
        {
            "key": "thing-happened",
            "name": "A thing happened",
            "event_type": "ping.thing.happened",
            "template": {
                "title": "{{ data.title }} happened",
                "body": "Value {{ data.value }} for {{ record.name }}",
                "link": "/ping/{{ subject }}",
            },
            "recipients": {"record": {"kind": "ping.thing"}},
            "channels": ["inapp", "email", "telegram"],
        }
    ]
