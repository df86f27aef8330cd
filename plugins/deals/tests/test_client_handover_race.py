"""A deal, policy or activity written on a client while the client is handed to another
owner: it ends up with the client's owner of the end, never with one who can no
longer see the client (a deal's owner must see its client).

Nothing was locked: the write checked the client without a lock, and the hand-over
moved the previous owner's deals before it updated the client, so it could not see a
deal not yet committed. An agent's deal stayed theirs on another agent's client,
whose page answered them 404. Now the write share-locks the client and the hand-over
locks it before it moves anything (``repository.clients``).

PostgreSQL only: SQLite's writers take turns (``BEGIN IMMEDIATE``), no write runs
beside a hand-over.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from crm2_deals.models import Activity, Client, Deal, Policy
from crm2_deals.schemas.deals import DealCreate, DealUpdate
from crm2_deals.service.deals import create_deal, update_deal
from deals_kit import API, Deals, User
from factories import get_row, make_client, make_deal
from sqlalchemy import select, text

from crm2_core.testing import waits_for_lock
from crm2_hookspecs import Principal

# The most any of these tests waits for anything.
BOUND = 30.0
USERS = "/api/v1/auth/users"

Write = Callable[[Deals, User, Client], Awaitable[Any]]


def _postgresql_only(deals: Deals) -> None:
    if deals.app.context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers take turns: no write runs beside a hand-over")


async def _new_deal(deals: Deals, agent: User, client: Client) -> Any:
    body = {"title": "Racing", "client_id": str(client.id)}
    return await deals.client.post(f"{API}/deals", json=body, headers=agent.headers)


async def _guessed_deal(deals: Deals, agent: User, client: Client) -> Any:
    """The one-statement create (this process knows where deals start)."""
    warm = await make_client(deals.app, agent.id)
    await deals.create_deal(agent.headers, str(warm.id))
    return await _new_deal(deals, agent, client)


async def _deal_in_a_stage(deals: Deals, agent: User, client: Client) -> Any:
    pipeline = await deals.pipeline(agent.headers)
    stage = deals.stage(pipeline, "Qualified")
    body = {"title": "Racing", "client_id": str(client.id), "stage_id": stage["id"]}
    return await deals.client.post(f"{API}/deals", json=body, headers=agent.headers)


async def _deal_moved_to_it(deals: Deals, agent: User, client: Client) -> Any:
    other = await make_client(deals.app, agent.id)
    deal = await make_deal(deals.app, other, owner_id=agent.id)
    return await deals.client.patch(
        f"{API}/deals/{deal.id}",
        json={"client_id": str(client.id)},
        headers={**agent.headers, "If-Match": f'"v{deal.version}"'},
    )


async def _policy(deals: Deals, agent: User, client: Client) -> Any:
    body = {
        "number": f"N-{uuid.uuid4().hex[:6]}", "insurer": "Allianz", "client_id": str(client.id),
        "product": "Motor", "premium": "650.00", "currency": "EUR",
        "payment_frequency": "annual", "start_date": "2030-01-01", "end_date": "2031-01-01",
    }  # fmt: skip
    return await deals.client.post(f"{API}/policies", json=body, headers=agent.headers)


async def _note(deals: Deals, agent: User, client: Client) -> Any:
    body = {"kind": "note", "subject": "Racing", "client_id": str(client.id)}
    return await deals.client.post(f"{API}/activities", json=body, headers=agent.headers)


WRITES: dict[str, tuple[Write, int]] = {  # the write, and its answer on a client gone
    "guessed deal": (_guessed_deal, 404),
    "first deal": (_new_deal, 404),
    "deal in a stage": (_deal_in_a_stage, 404),
    "deal moved to the client": (_deal_moved_to_it, 404),
    "policy": (_policy, 422),
    "note": (_note, 422),
}


@pytest.mark.parametrize("kind", list(WRITES))
async def test_a_write_during_a_hand_over_waits_and_then_sees_the_new_owner(
    deals: Deals, kind: str
) -> None:
    """The hand-over has locked and changed the client, not committed: the write waits
    for it, then finds a client its agent no longer sees, and writes nothing."""
    _postgresql_only(deals)
    write, refused = WRITES[kind]
    leaving, heir = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, leaving.id)
    async with deals.app.context.engine.connect() as hand_over:
        await hand_over.execute(
            text("UPDATE deals_client SET owner_id = :to, version = version + 1 WHERE id = :id"),
            {"to": heir.id, "id": client.id},
        )
        task = asyncio.create_task(write(deals, leaving, client))
        waited = await waits_for_lock(deals.app.context.engine, task, bound=BOUND)
        await hand_over.commit()
    answer = await asyncio.wait_for(task, BOUND)
    assert waited, f"the {kind} did not wait for the hand-over: {answer.status_code}"
    assert answer.status_code == refused, answer.text
    await _only_the_heirs(deals, client.id, heir.id)


@pytest.mark.parametrize("by", ["client PATCH", "user reassign"])
async def test_a_hand_over_during_a_create_takes_the_new_deal_along(deals: Deals, by: str) -> None:
    """A create (a handler's, the usual path) has checked the client and written the
    deal, not committed: the hand-over (of the client, or of all its owner's records)
    waits for it, then moves it with the others."""
    _postgresql_only(deals)
    manager = await deals.user("admin" if by == "user reassign" else "manager")
    leaving, heir = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, leaving.id)
    await deals.create_deal(leaving.headers, str(client.id))  # the start is known
    principal = Principal(
        id=leaving.id, kind="user", roles=frozenset({"agent"}),
        permissions=frozenset({"deals:read", "deals:write"}),
    )  # fmt: skip
    data = DealCreate(title="In flight", client_id=client.id)
    context = deals.app.context
    async with context.session_factory() as session:
        deal = await create_deal(session, principal, data, context=context)
        await session.flush()
        if by == "user reassign":
            url, body = f"{USERS}/{leaving.id}/reassign", {"to": str(heir.id)}
            handing = deals.client.post(url, json=body, headers=manager.headers)
        else:
            handing = _hand_over(deals, manager, client.id, heir.id)
        task = asyncio.create_task(handing)
        waited = await waits_for_lock(deals.app.context.engine, task, bound=BOUND)
        await session.commit()
    answer = await asyncio.wait_for(task, BOUND)
    assert answer.status_code == 200, answer.text
    assert waited, "the hand-over did not wait for the create"
    assert (await get_row(deals.app, Deal, deal.id)).owner_id == heir.id
    await _only_the_heirs(deals, client.id, heir.id)


MANAGER = frozenset({"deals:read", "deals:write", "deals:all_records"})


async def _create_on(session: Any, deals: Deals, leaving: User, client: Client) -> Deal:
    """``leaving`` creates their own deal on a client of someone else's."""
    principal = Principal(id=leaving.id, kind="user", roles=frozenset({"manager"}),
                          permissions=MANAGER)  # fmt: skip
    data = DealCreate(title="In flight", client_id=client.id)
    return await create_deal(session, principal, data, context=deals.app.context)


async def _give_to(session: Any, deals: Deals, leaving: User, client: Client) -> Deal:
    """Another manager gives ``leaving`` a deal on a client of someone else's."""
    deal = await make_deal(deals.app, client)
    principal = Principal(id=uuid.uuid4(), kind="user", roles=frozenset({"manager"}),
                          permissions=MANAGER)  # fmt: skip
    data = DealUpdate(owner_id=leaving.id)
    return await update_deal(
        session, principal, deal.id, f'"v{deal.version}"', data, context=deals.app.context
    )


@pytest.mark.parametrize("write", [_create_on, _give_to], ids=["created", "given"])
async def test_a_user_reassign_takes_along_a_deal_written_on_another_owners_client(
    deals: Deals, write: Callable[[Any, Deals, User, Client], Awaitable[Deal]]
) -> None:
    """The leaving user (a manager: ``deals:all_records``) is being given a deal on a
    client they do not own, not committed: the reassign, which locks only the leaving
    user's own clients, waits for it all the same (the user's row: the deal's owner
    key takes it), then moves it with the others; no deadlock with the client's lock."""
    _postgresql_only(deals)
    admin = await deals.user("admin")
    leaving, heir = await deals.user("manager"), await deals.user("manager")
    third = await deals.user("agent")
    own = await make_client(deals.app, leaving.id)  # the reassign locks this one
    client = await make_client(deals.app, third.id)
    await deals.create_deal(third.headers, str(client.id))  # the start is known
    context = deals.app.context
    async with context.session_factory() as session:
        deal = await write(session, deals, leaving, client)
        await session.flush()
        url, body = f"{USERS}/{leaving.id}/reassign", {"to": str(heir.id)}
        task = asyncio.create_task(deals.client.post(url, json=body, headers=admin.headers))
        waited = await waits_for_lock(deals.app.context.engine, task, bound=BOUND)
        await session.commit()
    answer = await asyncio.wait_for(task, BOUND)
    assert answer.status_code == 200, answer.text
    assert waited, "the reassign did not wait for the deal being written"
    assert (await get_row(deals.app, Deal, deal.id)).owner_id == heir.id
    assert (await get_row(deals.app, Client, own.id)).owner_id == heir.id
    gone = await deals.client.delete(f"{USERS}/{leaving.id}", headers=admin.headers)
    assert gone.status_code == 204, gone.text


async def test_creates_and_hand_overs_racing_both_ways_all_finish_agreeing(
    deals: Deals,
) -> None:
    """Deals created by both agents while the client goes back and forth between them:
    every request finishes (no deadlock: the client is always locked before a deal),
    and every deal on the client ends with its owner of the end."""
    _postgresql_only(deals)
    manager = await deals.user("manager")
    a, b = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, a.id)
    await deals.create_deal(a.headers, str(client.id))

    async def create(agent: User) -> int:
        return (await _new_deal(deals, agent, client)).status_code

    async def hand_over(to: User) -> int:
        return (await _hand_over(deals, manager, client.id, to.id)).status_code

    for _ in range(3):
        jobs = [create(a), create(b), hand_over(b), create(a), hand_over(a), create(b)]
        answers = await asyncio.wait_for(asyncio.gather(*jobs), BOUND)
        assert set(answers) <= {200, 201, 404, 412}, answers
    owner = (await get_row(deals.app, Client, client.id)).owner_id
    await _only_the_heirs(deals, client.id, owner)


async def _hand_over(deals: Deals, manager: User, client_id: uuid.UUID, to: uuid.UUID) -> Any:
    for _ in range(20):  # a concurrent hand-over may have made the ETag stale
        url = f"{API}/clients/{client_id}"
        etag = (await deals.client.get(url, headers=manager.headers)).headers["etag"]
        answer = await deals.client.patch(
            url, json={"owner_id": str(to)}, headers={**manager.headers, "If-Match": etag}
        )
        if answer.status_code != 412:
            return answer
    return answer


async def _only_the_heirs(deals: Deals, client_id: uuid.UUID, heir: uuid.UUID) -> None:
    """Every deal, policy and activity on the client is ``heir``'s."""
    async with deals.app.context.session_factory() as session:
        for model in (Deal, Policy, Activity):
            table: Any = getattr(model, "__table__")  # noqa: B009
            stmt = select(table.c.owner_id).where(table.c.client_id == client_id)
            owners = set((await session.execute(stmt)).scalars())
            assert owners <= {heir}, (model.__name__, owners)
