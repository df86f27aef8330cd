"""The ``deals`` stream when a record changes owner: the previous owner hears that it
left them (their console drops the card), the new owner that it came to them.

Each event was delivered by its ``owner_id`` alone, the new owner's: the previous
owner's stream was never told, and their console kept a stale card.
"""

from __future__ import annotations

from typing import Any

import httpx
from deals_kit import API, Deals
from factories import make_client, make_deal

from crm2_core.testing.sse import EventStream, serving

STREAM = "/api/v1/streams/deals"


async def _patch(deals: Deals, path: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    etag = (await deals.client.get(f"{API}/{path}", headers=headers)).headers["etag"]
    answer = await deals.client.patch(
        f"{API}/{path}", json=body, headers={**headers, "If-Match": etag}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_deal_handed_over_is_announced_to_both_owners(deals: Deals) -> None:
    manager = await deals.user("manager")
    one, two = await deals.user("agent"), await deals.user("agent")
    theirs, mine = await make_client(deals.app, one.id), await make_client(deals.app, two.id)
    deal = await make_deal(deals.app, theirs)
    async with (
        serving(deals.app) as base,
        httpx.AsyncClient(timeout=20.0) as http,
        http.stream("GET", f"{base}{STREAM}", headers=one.headers) as one_response,
        http.stream("GET", f"{base}{STREAM}", headers=two.headers) as two_response,
    ):
        old, new = EventStream(one_response), EventStream(two_response)
        await old.connected()
        await new.connected()
        await _patch(
            deals, f"deals/{deal.id}", manager.headers,
            {"client_id": str(mine.id), "owner_id": str(two.id)},
        )  # fmt: skip
        # a marker each agent owns: a stream not told of the hand-over gets it first
        await deals.create_client(one.headers)
        await deals.create_client(two.headers)

        left = await old.next_event()
        came = await new.next_event()

    for message in (left, came):
        assert message.event == "deals.deal.updated", message
        event = message.json()
        assert event["subject"] == str(deal.id)
        assert event["data"]["owner_id"] == str(two.id)
        assert event["data"]["previous_owner_id"] == str(one.id)
        assert "owner_id" in event["data"]["changed"]


async def test_a_client_handed_over_is_announced_to_its_previous_owner(deals: Deals) -> None:
    manager = await deals.user("manager")
    one, two = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, one.id)
    async with (
        serving(deals.app) as base,
        httpx.AsyncClient(timeout=20.0) as http,
        http.stream("GET", f"{base}{STREAM}", headers=one.headers) as one_response,
    ):
        old = EventStream(one_response)
        await old.connected()
        await _patch(deals, f"clients/{client.id}", manager.headers, {"owner_id": str(two.id)})
        await deals.create_client(one.headers)  # the marker

        left = await old.next_event()

    assert left.event == "deals.client.updated", left
    event = left.json()
    assert event["subject"] == str(client.id)
    assert (event["data"]["owner_id"], event["data"]["previous_owner_id"]) == (
        str(two.id), str(one.id),
    )  # fmt: skip


async def test_an_unrelated_agent_hears_nothing_of_a_hand_over(deals: Deals) -> None:
    manager = await deals.user("manager")
    one, two, three = [await deals.user("agent") for _ in range(3)]
    client = await make_client(deals.app, one.id)
    async with (
        serving(deals.app) as base,
        httpx.AsyncClient(timeout=20.0) as http,
        http.stream("GET", f"{base}{STREAM}", headers=three.headers) as response,
    ):
        stranger = EventStream(response)
        await stranger.connected()
        await _patch(deals, f"clients/{client.id}", manager.headers, {"owner_id": str(two.id)})
        marker = await deals.create_client(three.headers)

        first = await stranger.next_event()

    assert first.event == "deals.client.created" and first.json()["subject"] == marker["id"]
