"""Data sets: ``crm2 seed demo`` and the bulk loader (tiny sizes here)."""

from __future__ import annotations

import inspect
import io
from datetime import timedelta

import pytest
from crm2_deals.models import Activity, Client, ClientEmail, Contact, Deal, Policy, StageMove
from crm2_deals.seed_load import seed_load
from crm2_deals.seeds import DEMO_AGENTS, DEMO_MANAGER, seed_demo
from deals_kit import API, Deals
from factories import rows
from rich.console import Console
from sqlalchemy import func, select

from crm2_core.api import utcnow


async def count(deals: Deals, model: object, *where: object) -> int:
    async with deals.app.context.session_factory() as session:
        stmt = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int((await session.execute(stmt)).scalar_one())


def quiet() -> Console:
    return Console(quiet=True)


async def test_demo_loads_a_realistic_agency(deals: Deals) -> None:
    counts = await seed_demo(deals.app.context, console=quiet())
    assert counts is not None
    assert (counts.users, counts.clients, counts.deals, counts.policies) == (4, 50, 200, 60)
    assert await count(deals, Client) == 50
    assert await count(deals, Client, Client.kind == "company") == 20
    assert await count(deals, Contact) == counts.contacts >= 20
    assert await count(deals, ClientEmail) == 50
    assert await count(deals, Deal) == 200
    assert await count(deals, StageMove) >= 200
    assert await count(deals, Activity) == counts.activities > 200
    for status in ("open", "won", "lost"):
        assert await count(deals, Deal, Deal.status == status) > 10, status
    lost = await rows(deals.app, Deal, Deal.status == "lost")
    assert all(d.lost_reason and d.closed_at for d in lost)
    today = utcnow().date()
    near = Policy.end_date <= today + timedelta(days=30)
    assert await count(deals, Policy, Policy.status == "active", near) == 10
    assert await count(deals, Policy, Policy.status == "expired") == 8


async def test_demo_users_sign_in_with_the_printed_password(deals: Deals) -> None:
    console = Console(record=True, width=1000, file=io.StringIO())
    await seed_demo(deals.app.context, console=console)
    password = console.export_text().rsplit("(shown once): ", 1)[1].split()[0]

    async def policies_of(email: str) -> list[dict[str, object]]:
        login = {"email": email, "password": password}
        r = await deals.client.post("/api/v1/auth/login", json=login)
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = await deals.client.get(f"{API}/policies", params={"limit": 100}, headers=headers)
        items: list[dict[str, object]] = r.json()["items"]
        return items

    assert len(await policies_of(DEMO_MANAGER)) == 60
    mine = await policies_of(DEMO_AGENTS[0])
    assert 0 < len(mine) < 60
    assert len({p["owner_id"] for p in mine}) == 1


async def test_demo_twice_changes_nothing(deals: Deals) -> None:
    await seed_demo(deals.app.context, console=quiet())
    assert await seed_demo(deals.app.context, console=quiet()) is None
    assert await count(deals, Client) == 50


async def test_the_seed_hook_answers_demo_and_ignores_other_names(deals: Deals) -> None:
    context = deals.app.context
    results = dict(context.plugins.call("crm2_seed", name="nothing", context=context))
    assert "deals" not in results
    results = dict(context.plugins.call("crm2_seed", name="demo", context=context))
    assert inspect.isawaitable(results["deals"])
    results["deals"].close()  # type: ignore[attr-defined]


async def test_bulk_load_writes_consistent_rows(deals: Deals) -> None:
    owner = await deals.app.create_user("agent")
    result = await seed_load(
        deals.app.context, clients=30, deals=250, owners=[owner], progress=False
    )
    assert result == {"clients": 30, "deals": 250}
    assert await count(deals, Client) == await count(deals, ClientEmail) == 30
    assert await count(deals, Deal) == 250
    loaded = await rows(deals.app, Deal)
    assert all(d.owner_id == owner for d in loaded)
    assert all((d.status == "lost") == (d.lost_reason is not None) for d in loaded)
    assert all((d.status == "open") == (d.closed_at is None) for d in loaded)
    await seed_load(deals.app.context, clients=5, deals=5, owners=[owner], progress=False)
    assert await count(deals, Client) == 35


async def test_seed_load_is_sized_by_the_environment_and_creates_owners_once(
    deals: Deals, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM2_SEED_CLIENTS", "4")
    monkeypatch.setenv("CRM2_SEED_DEALS", "6")
    context = deals.app.context
    (result,) = [r for p, r in context.plugins.call("crm2_seed", name="load", context=context)]
    assert await result == {"clients": 4, "deals": 6}
    await seed_load(context, clients=3, deals=3, progress=False)
    assert (await count(deals, Client), await count(deals, Deal)) == (7, 9)
    owners = {c.owner_id for c in await rows(deals.app, Client)}
    assert 1 <= len(owners) <= 10
