"""A user's hand-over (``reassign``) racing the deactivation of the heir.

The core checked the heir was active once, without a lock, then the plugins moved
the records: a deactivation committing in between left every client, deal and
policy with an inactive user. Now the heir's row is share-locked (by deals in id
order with the leaving user's) and read again under the lock: a deactivation in
flight is waited for and seen (422, nothing moved), a later one waits for the
hand-over. And two hand-overs between the same two users, each the other's heir,
take the two rows in one order: one goes first, neither deadlocks.

PostgreSQL only: SQLite's writers take turns (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from crm2_deals.models import Client
from deals_kit import deals_with
from factories import get_row, make_client
from sqlalchemy import text

from crm2_core.testing import waits_for_lock

BOUND = 30.0  # the most the test waits for anything
USERS = "/api/v1/auth/users"


async def test_a_heir_deactivated_during_the_hand_over_gets_nothing(
    crm2_app_factory: Any,
) -> None:
    deals, admin, _ = await deals_with(crm2_app_factory)
    if deals.app.context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers take turns: no deactivation runs beside a reassign")
    leaving, heir = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, leaving.id)
    engine = deals.app.context.engine
    async with engine.connect() as deactivation:
        # the heir's deactivation, in flight: their row locked until it commits
        await deactivation.execute(
            text("UPDATE auth_user SET is_active = false WHERE id = :id"), {"id": heir.id}
        )
        reassign = asyncio.create_task(
            deals.client.post(
                f"{USERS}/{leaving.id}/reassign", json={"to": str(heir.id)}, headers=admin.headers
            )
        )
        waited = await waits_for_lock(engine, reassign, bound=BOUND)
        await deactivation.commit()
    answer = await asyncio.wait_for(reassign, BOUND)
    assert answer.status_code == 422, answer.text
    assert answer.json()["type"].endswith("unknown-user"), answer.text
    assert waited, "the reassign did not wait for the deactivation"
    assert (await get_row(deals.app, Client, client.id)).owner_id == leaving.id


async def test_two_hand_overs_between_the_same_users_do_not_deadlock(
    crm2_app_factory: Any,
) -> None:
    deals, admin, _ = await deals_with(crm2_app_factory)
    if deals.app.context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers take turns")
    one, other = await deals.user("agent"), await deals.user("agent")
    ones = await make_client(deals.app, one.id)  # `other` has nothing to hand over
    answers = await asyncio.wait_for(
        asyncio.gather(
            deals.client.post(
                f"{USERS}/{one.id}/reassign", json={"to": str(other.id)}, headers=admin.headers
            ),
            deals.client.post(
                f"{USERS}/{other.id}/reassign", json={"to": str(one.id)}, headers=admin.headers
            ),
        ),
        BOUND,
    )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    # whichever went first, the client ended with one of them, moved once or twice
    assert (await get_row(deals.app, Client, ones.id)).owner_id in (one.id, other.id)
