"""The ``deals`` stream: which subscriber may receive which event."""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.stream import can_see, channels
from deals_kit import API, Deals
from factories import events_of, make_client

from crm2_core.api import Envelope, utcnow
from crm2_hookspecs import Principal, SseChannel

# Policy dates a year or more ahead of the real today (2026 here is next year): the
# policy job the app runs at start on the real clock never expires or announces them.
SHIFT = utcnow().year + 1 - 2026


def y(iso: str) -> str:
    """``iso`` (written as if next year were 2026) moved to the years this run needs."""
    return f"{int(iso[:4]) + SHIFT}{iso[4:]}"


AGENT = uuid.uuid4()


def principal(*permissions: str, kind: str = "user", **attributes: Any) -> Principal:
    return Principal(
        id=AGENT if kind == "user" else uuid.uuid4(),
        kind=kind,
        roles=frozenset({"agent"}),
        permissions=frozenset(permissions),
        attributes=attributes,
    )


def event(owner_id: Any) -> dict[str, Any]:
    return {"type": "deals.deal.won", "data": {"owner_id": str(owner_id), "value": "1.00"}}


async def test_all_records_sees_every_event() -> None:
    manager = principal("deals:read", "deals:all_records")
    assert await can_see(manager, event(uuid.uuid4()), None)
    assert await can_see(principal("*"), event(uuid.uuid4()), None)


async def test_agent_sees_only_events_of_records_they_own() -> None:
    agent = principal("deals:read", "deals:write")
    assert await can_see(agent, event(AGENT), None)
    assert not await can_see(agent, event(uuid.uuid4()), None)


async def test_an_event_without_owner_is_hidden_from_agents() -> None:
    agent = principal("deals:read")
    assert not await can_see(agent, {"type": "deals.x.y", "data": {}}, None)
    assert not await can_see(agent, {"type": "deals.x.y"}, None)


async def test_an_agents_api_key_sees_what_its_creator_owns() -> None:
    creator = uuid.uuid4()
    key = principal("deals:read", kind="api_key", created_by=creator)
    assert await can_see(key, event(creator), None)
    assert not await can_see(key, event(key.id), None)


async def test_the_channel_carries_every_deals_event_to_readers(deals: Deals) -> None:
    (channel,) = [
        c
        for plugin, c in deals.app.context.plugins.collect(
            "crm2_sse_channels", context=deals.app.context
        )
        if plugin == "deals"
    ]
    assert isinstance(channel, SseChannel) and channel == channels()[0]
    assert (channel.name, channel.permission) == ("deals", "deals:read")
    assert channel.matches("deals.policy.renewal_due")
    assert not channel.matches("auth.user.created")


async def test_a_real_policy_event_reaches_its_owner_only(deals: Deals) -> None:
    agent1, agent2 = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, agent1.id)
    body = {
        "number": "S-1", "insurer": "AXA", "client_id": str(client.id), "product": "Home",
        "premium": "100.00", "currency": "EUR", "start_date": y("2026-01-01"),
        "end_date": y("2027-01-01"),
    }  # fmt: skip
    r = await deals.client.post(f"{API}/policies", json=body, headers=agent1.headers)
    assert r.status_code == 201
    (record,) = await events_of(deals.app, "deals.policy.created")
    envelope = Envelope.from_record(record)

    def as_principal(user_id: uuid.UUID) -> Principal:
        return Principal(
            id=user_id,
            kind="user",
            roles=frozenset({"agent"}),
            permissions=frozenset({"deals:read"}),
        )

    assert await can_see(as_principal(agent1.id), envelope, deals.app.context)
    assert not await can_see(as_principal(agent2.id), envelope, deals.app.context)
