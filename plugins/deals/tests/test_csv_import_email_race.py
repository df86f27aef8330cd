"""A client import batch racing a change of the e-mails it matches clients by.

A batch reads the clients holding its rows' e-mails and tax ids, then locks them (in
id order) before it writes. It read them before the lock: a client whose e-mail was
being changed (its row locked by the change) was matched by the e-mail it no longer
had once the batch got the lock, and the row's update gave it that e-mail back, on
top of its name. Now the batch reads which clients match again under the lock.

PostgreSQL only: SQLite's writers take turns (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from crm2_deals.models import Client
from crm2_deals.service.client_import import import_batch, parse_row
from crm2_deals.service.clients import write_update
from deals_kit import deals_with
from factories import get_row, rows

from crm2_core.testing import waits_for_lock
from crm2_hookspecs import Principal

BOUND = 30.0  # the most the test waits for anything


async def test_a_batch_does_not_match_a_client_by_an_email_changed_while_it_waited(
    crm2_app_factory: Any,
) -> None:
    deals, admin, _ = await deals_with(crm2_app_factory)
    if deals.app.context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers take turns: no import runs beside a change")
    created = await deals.create_client(admin.headers, name="Kept name", emails=["old@example.com"])
    client_id = uuid.UUID(created["id"])
    principal = Principal(id=admin.id, kind="user", roles=frozenset({"admin"}),
                          permissions=frozenset({"deals:read", "deals:write",
                                                 "deals:all_records"}))  # fmt: skip
    row = [(2, parse_row({"name": "Imported", "emails": "old@example.com"}))]

    async def batch() -> list[Any]:
        async with deals.app.context.session_factory() as session:
            outcomes = await import_batch(session, principal, row, deals.app.context)
            await session.commit()
            return outcomes

    async with deals.app.context.session_factory() as change:
        client = await change.get(Client, client_id)
        assert client is not None
        # the change's UPDATE holds the client's row until it commits
        await write_update(change, principal, client, {"emails": ["new@example.com"]})
        importing = asyncio.create_task(batch())
        waited = await waits_for_lock(deals.app.context.engine, importing, bound=BOUND)
        await change.commit()
    outcomes = await asyncio.wait_for(importing, BOUND)
    assert waited, "the batch did not wait for the change"
    # old@example.com is nobody's now: the row makes a client of its own
    assert outcomes == ["created"], outcomes
    changed = await get_row(deals.app, Client, client_id)
    assert changed.emails == ["new@example.com"]
    assert changed.name == "Kept name"
    made = await rows(deals.app, Client, Client.name == "Imported")
    assert [c.emails for c in made] == [["old@example.com"]]
