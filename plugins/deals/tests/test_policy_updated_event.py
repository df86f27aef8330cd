"""A policy's PATCH is announced like a client's or deal's: ``deals.policy.updated``
naming the fields that changed, with the previous owner when it was handed over.

It announced nothing: a hand-over never reached the previous owner's (nor the new
owner's) stream, and other plugins kept the number and insurer of its creation.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.models import Policy
from crm2_deals.stream import can_see
from deals_kit import API, Deals
from factories import events_of, get_row, make_client, make_policy

from crm2_core.api import Envelope
from crm2_hookspecs import Principal


async def _patch(deals: Deals, headers: dict[str, str], policy_id: Any, body: Any) -> Any:
    url = f"{API}/policies/{policy_id}"
    etag = (await deals.client.get(url, headers=headers)).headers["etag"]
    answer = await deals.client.patch(url, json=body, headers={**headers, "If-Match": etag})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _reader(user_id: uuid.UUID) -> Principal:
    return Principal(
        id=user_id, kind="user", roles=frozenset({"agent"}), permissions=frozenset({"deals:read"})
    )


async def test_a_policy_patch_is_announced_with_what_changed(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    policy = await make_policy(deals.app, client)

    await _patch(deals, admin.headers, policy.id, {"number": "NEW-1", "product": "Home"})
    await _patch(deals, admin.headers, policy.id, {"product": "Home"})  # nothing changes

    (event,) = await events_of(deals.app, "deals.policy.updated")
    assert event.subject == str(policy.id)
    assert event.data["changed"] == ["number", "product"]
    assert event.data["owner_id"] == str(admin.id)
    assert event.data["previous_owner_id"] is None


async def test_a_policy_handed_over_is_announced_to_both_owners(deals: Deals) -> None:
    manager, agent, stranger = (
        await deals.user("manager"), await deals.user("agent"), await deals.user("agent"),
    )  # fmt: skip
    client = await make_client(deals.app, agent.id)
    policy = await make_policy(deals.app, client)

    await _patch(deals, manager.headers, policy.id, {"owner_id": str(manager.id)})

    (event,) = await events_of(deals.app, "deals.policy.updated")
    assert event.data["changed"] == ["owner_id"]
    assert (event.data["owner_id"], event.data["previous_owner_id"]) == (
        str(manager.id), str(agent.id),
    )  # fmt: skip
    envelope = Envelope.from_record(event)
    assert await can_see(_reader(agent.id), envelope, deals.app.context)
    assert not await can_see(_reader(stranger.id), envelope, deals.app.context)


async def test_a_policy_patch_that_changes_nothing_keeps_its_etag(deals: Deals) -> None:
    """An unchanged PATCH wrote the row anyway: a new version (every open ETag stale)."""
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    policy = await make_policy(deals.app, client)
    url = f"{API}/policies/{policy.id}"
    etag = (await deals.client.get(url, headers=admin.headers)).headers["etag"]
    same = {
        "product": policy.product,
        "insurer": policy.insurer,
        "number": policy.number,
        "start_date": policy.start_date.isoformat(),
        "end_date": policy.end_date.isoformat(),
        "premium": "650.00",
        "currency": policy.currency,
        "owner_id": str(admin.id),
    }

    for body in ({}, same):
        answer = await deals.client.patch(
            url, json=body, headers={**admin.headers, "If-Match": etag}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["etag"] == etag
        assert answer.json()["version"] == policy.version

    assert (await get_row(deals.app, Policy, policy.id)).version == policy.version
    assert await events_of(deals.app, "deals.policy.updated") == []
