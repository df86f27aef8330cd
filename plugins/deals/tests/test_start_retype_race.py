"""A deal created without a stage while an admin makes that stage won (or lost): the
new deal's status always agrees with the kind its stage has in the end.

The create read the pipeline's first open stage outside any lock (on PostgreSQL
outside the transaction, or from the application's cached guess), the retype found
the stage empty and made it won, and the create then wrote an open deal into a won
stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from crm2_deals.models import Deal, Stage
from deals_kit import API, deals_with
from factories import first_stage, get_row
from sqlalchemy import text

from crm2_core.testing import Crm2TestApp
from crm2_hookspecs import PluginManifest, hookimpl


class PausesCreates:
    """Holds a deal's create after it has read where the deal starts, before it writes
    (the veto hook runs there), until the test lets it go on."""

    manifest = PluginManifest(
        name="pausescreates", title="Pauses creates (test)", depends=("deals",)
    )

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    @hookimpl
    async def crm2_deals_validate_change(self, change: Any) -> str | None:
        if change.action == "create":
            self.reached.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.go_on.wait(), 10.0)
        return None


async def _agrees(app: Crm2TestApp, created: dict[str, Any]) -> Stage:
    row = await get_row(app, Deal, uuid.UUID(created["id"]))
    stage = await get_row(app, Stage, row.stage_id)
    assert (row.stage_id, row.status) == (stage.id, stage.kind), created
    assert created["stage_id"] == str(stage.id) and created["status"] == stage.kind
    return stage


async def test_a_retype_racing_a_create_leaves_status_and_stage_agreeing(
    crm2_app_factory: Any,
) -> None:
    pauser = PausesCreates()
    deals, admin, client = await deals_with(crm2_app_factory, pauser)
    app = deals.app
    pipeline = await deals.pipeline(admin.headers)
    first = pipeline["stages"][0]

    body = {"title": "Racing", "client_id": client["id"], "value": "1.00", "currency": "EUR"}
    create = asyncio.create_task(
        deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
    )
    await asyncio.wait_for(pauser.reached.wait(), 10.0)
    retype = asyncio.create_task(deals.retype_start(admin.headers, pipeline))
    # the retype runs while the create is held: to its end, or until it waits for it
    await asyncio.wait({retype}, timeout=1.0)
    pauser.go_on.set()
    created, retyped = await create, await retype

    assert created.status_code == 201, created.text
    assert retyped.status_code in (200, 409), retyped.text
    stage = await _agrees(app, created.json())
    if retyped.status_code == 200:  # the retype came first: the deal starts in the next open
        assert stage.id != uuid.UUID(first["id"]) and stage.kind == "open"


async def test_a_retype_in_flight_during_a_guessed_create_leaves_them_agreeing(
    crm2_app_factory: Any,
) -> None:
    """PostgreSQL: the application's guess (the stage it read last) is checked by the
    create's one statement; a retype that has locked and changed the stage but not yet
    committed must not let that check pass on what it saw before."""
    deals, admin, client = await deals_with(crm2_app_factory)
    app = deals.app
    if app.context.engine.dialect.name != "postgresql":
        return  # SQLite's writers take turns: the start is read under the write lock
    warm = await deals.create_deal(admin.headers, client["id"])  # the guess: the first stage
    gone = await deals.client.delete(
        f"{API}/deals/{warm['id']}", headers={**admin.headers, "If-Match": f'"v{warm["version"]}"'}
    )
    assert gone.status_code == 204, gone.text
    stage = await first_stage(app)
    assert str(stage.id) == warm["stage_id"]

    async with app.context.engine.connect() as retype:  # as the pipeline PATCH does it
        await retype.execute(
            text("SELECT id FROM deals_stage WHERE id = :id FOR UPDATE"), {"id": stage.id}
        )
        await retype.execute(
            text("UPDATE deals_stage SET kind = 'won' WHERE id = :id"), {"id": stage.id}
        )
        create = asyncio.create_task(deals.create_deal(admin.headers, client["id"]))
        await asyncio.wait({create}, timeout=0.5)  # it waits for the retype's lock
        assert not create.done()
        await retype.commit()
    created = await create
    assert created["stage_id"] != str(stage.id)  # the stage is won now: the next open one
    await _agrees(app, created)
