"""``crm2_resolve_entity``: other plugins see deals' records (and core users) without imports.

Resolved through pluggy as any plugin would (``crm2_core.api.resolve_entity``),
with the caller's visibility: another agent's record is ``None``, like a missing one.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from crm2_deals.models import Client, Contact
from deals_kit import Deals
from factories import make_client, make_deal, make_policy

from crm2_core.api import EntityLink, LinkInvalid, require_entity, resolve_entity
from crm2_core.testing import Crm2TestApp
from crm2_hookspecs import Principal


def _principal(user_id: uuid.UUID, *permissions: str) -> Principal:
    return Principal(
        id=user_id, kind="user", roles=frozenset({"agent"}), permissions=frozenset(permissions)
    )


async def _contact(app: Crm2TestApp, client_id: uuid.UUID) -> Contact:
    async with app.context.session_factory() as session:
        contact = Contact(client_id=client_id, name="Ann")
        session.add(contact)
        await session.commit()
    return contact


async def test_every_deals_kind_resolves_for_its_owner_and_not_for_another_agent(
    deals: Deals,
) -> None:
    owner, other = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, owner.id, name="Acme")
    deal = await make_deal(deals.app, client, title="Big one")
    policy = await make_policy(deals.app, client)
    contact = await _contact(deals.app, client.id)
    context = deals.app.context
    records = {
        "deals.client": client.id,
        "deals.deal": deal.id,
        "deals.policy": policy.id,
        "deals.contact": contact.id,
    }

    for kind, record_id in records.items():
        mine = await resolve_entity(context, kind, record_id, _principal(owner.id))
        theirs = await resolve_entity(context, kind, record_id, _principal(other.id))
        system = await resolve_entity(context, kind, record_id, None)

        assert mine is not None and mine["kind"] == kind and mine["id"] == str(record_id)
        assert theirs is None, kind
        assert system == mine
    assert (await resolve_entity(context, "deals.deal", deal.id, None) or {})["name"] == "Big one"


async def test_a_manager_resolves_every_owner_s_records(deals: Deals) -> None:
    agent = await deals.user("agent")
    client = await make_client(deals.app, agent.id)
    manager = _principal(uuid.uuid4(), "deals:all_records")

    found = await resolve_entity(deals.app.context, "deals.client", client.id, manager)

    assert found is not None and found["owner_id"] == str(agent.id)


@pytest.mark.parametrize(
    ("kind", "record_id"),
    [
        ("deals.client", "6f1c0c2e-52a8-4a52-9a43-0c9d3f0e7b11"),
        ("deals.client", "not-a-uuid"),
        ("deals.nope", "x"),
    ],
)
async def test_unknown_records_and_kinds_resolve_to_none(
    deals: Deals, kind: str, record_id: str
) -> None:
    assert await resolve_entity(deals.app.context, kind, record_id, None) is None


async def test_the_core_answers_for_auth_user_and_shows_the_email_to_admins_only(
    deals: Deals,
) -> None:
    agent, other = await deals.user("agent"), await deals.user("agent")
    context = deals.app.context

    as_system = await resolve_entity(context, "auth.user", agent.id, None)
    as_other = await resolve_entity(context, "auth.user", agent.id, _principal(other.id))

    assert as_system is not None and as_system["email"] == agent.email
    assert as_system["is_active"] is True
    assert as_other is not None and "email" not in as_other


async def test_a_link_the_caller_cannot_see_is_a_422_link_invalid(deals: Deals) -> None:
    owner, other = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, owner.id)
    link = EntityLink(kind="deals.client", id=client.id)

    found = await require_entity(deals.app.context, link, _principal(owner.id))
    with pytest.raises(LinkInvalid) as refused:
        await require_entity(deals.app.context, link, _principal(other.id))

    assert found["name"] == client.name
    assert refused.value.status == 422


async def test_a_request_that_has_written_resolves_in_its_own_session(deals: Deals) -> None:
    """On SQLite a second session would wait for the write lock this one holds."""
    owner = await deals.user("agent")
    context = deals.app.context
    async with context.session_factory() as session:
        client = Client(kind="person", name="Fresh", owner_id=owner.id)
        session.add(client)
        await session.flush()  # the request has written: it holds the lock until it ends
        link = EntityLink(kind="deals.client", id=client.id)
        async with asyncio.timeout(5):
            found = await require_entity(context, link, _principal(owner.id), session)
            user = await resolve_entity(context, "auth.user", owner.id, None, session)
        await session.rollback()
    assert found["name"] == "Fresh"  # not committed: only this session can see it
    assert user is not None and user["email"] == owner.email
