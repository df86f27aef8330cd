"""A client import batch racing a user's hand-over (``reassign``) of a user it touches.

The reassign locks the leaving user's clients, then their user row (``FOR UPDATE``).
A batch that first gave a client to that user (the owner key share-locks the user
row to the commit) and then handed over one of the user's own clients locked that
client only when it came to it: each waited for the other, a deadlock, one of them
aborted. Now a batch locks every client it may write, in id order, before it writes:
the reassign waits for the batch, then takes along what it gave the user.

PostgreSQL only: SQLite's writers take turns (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from crm2_deals.models import Client, Deal
from crm2_deals.service.client_import import import_batch, parse_row
from deals_kit import deals_with
from factories import get_row, make_client, make_deal

from crm2_core.testing import waits_for_lock
from crm2_hookspecs import PluginManifest, Principal, hookimpl

BOUND = 30.0  # the most the test waits for anything
USERS = "/api/v1/auth/users"


class PausesOnDeal:
    """Holds the batch (between its rows) at the vetting of one deal's hand-over."""

    manifest = PluginManifest(name="pausesondeal", title="Pauses (test)", depends=("deals",))

    def __init__(self) -> None:
        self.deal_id: uuid.UUID | None = None
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    @hookimpl
    async def crm2_deals_validate_change(self, change: Any, session: Any) -> str | None:
        if change.deal_id == self.deal_id:
            self.reached.set()
            await asyncio.wait_for(self.go_on.wait(), BOUND)
        return None


async def test_a_batch_giving_and_taking_a_users_clients_does_not_deadlock_their_reassign(
    crm2_app_factory: Any,
) -> None:
    pause = PausesOnDeal()
    deals, admin, _ = await deals_with(crm2_app_factory, pause)
    if deals.app.context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers take turns: no import runs beside a reassign")
    leaving, heir, other = (
        await deals.user("agent"), await deals.user("agent"), await deals.user("agent")
    )  # fmt: skip
    first, third = await deals.user("agent"), await deals.user("agent")
    given = await make_client(deals.app, first.id, tax_id="GIVEN")  # row 1: to `leaving`
    paused = await make_client(deals.app, third.id, tax_id="PAUSED")  # row 2: waits
    taken = await make_client(deals.app, leaving.id, tax_id="TAKEN")  # row 3: from them
    pause.deal_id = (await make_deal(deals.app, paused)).id
    rows = [
        (n, parse_row({"name": name, "tax_id": tax, "owner_email": to.email}))
        for n, (name, tax, to) in enumerate(
            [("Given", "GIVEN", leaving), ("Paused", "PAUSED", other), ("Taken", "TAKEN", other)],
            start=2,
        )
    ]
    principal = Principal(id=admin.id, kind="user", roles=frozenset({"admin"}),
                          permissions=frozenset({"deals:read", "deals:write",
                                                 "deals:all_records"}))  # fmt: skip

    async def batch() -> list[Any]:
        async with deals.app.context.session_factory() as session:
            outcomes = await import_batch(session, principal, rows, deals.app.context)
            await session.commit()
            return outcomes

    importing = asyncio.create_task(batch())
    await asyncio.wait_for(pause.reached.wait(), BOUND)  # row 1 written, row 2 held
    url = f"{USERS}/{leaving.id}/reassign"
    reassign = asyncio.create_task(
        deals.client.post(url, json={"to": str(heir.id)}, headers=admin.headers)
    )
    waited = await waits_for_lock(deals.app.context.engine, reassign, bound=BOUND)
    pause.go_on.set()
    outcomes = await asyncio.wait_for(importing, BOUND)
    answer = await asyncio.wait_for(reassign, BOUND)
    assert waited, "the reassign did not wait for the batch"
    assert outcomes == ["updated", "updated", "updated"], outcomes
    assert answer.status_code == 200, answer.text
    # the reassign came after the batch: it took along the client the batch gave
    assert (await get_row(deals.app, Client, given.id)).owner_id == heir.id
    assert (await get_row(deals.app, Client, taken.id)).owner_id == other.id
    assert (await get_row(deals.app, Deal, pause.deal_id)).owner_id == other.id
