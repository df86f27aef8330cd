"""A deal moving into a stage while an admin changes that stage's kind: the deal's
status always follows the kind its stage has in the end.

The move read the stage (open), the retype found the stage empty and made it won,
and the move then wrote an open deal into a won stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from crm2_deals.models import Deal, Stage
from deals_kit import API, Deals, seed_defaults
from factories import get_row

from crm2_core.testing import Crm2TestApp
from crm2_hookspecs import PluginManifest, hookimpl


class PausesMoves:
    """Holds a stage move after it has read its stage, before it writes (the veto hook
    runs there), until the test lets it go on: the race's window, held open."""

    manifest = PluginManifest(name="pausesmoves", title="Pauses moves (test)", depends=("deals",))

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    @hookimpl
    async def crm2_deals_validate_change(self, change: Any) -> str | None:
        if change.action == "move":
            self.reached.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.go_on.wait(), 10.0)
        return None


async def test_a_retype_racing_a_move_leaves_status_and_stage_agreeing(
    crm2_app_factory: Any,
) -> None:
    pauser = PausesMoves()
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["deals", "pausesmoves"], extra_plugins=(pauser,)
    )
    await seed_defaults(app)
    deals = Deals(app)
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    deal = await deals.create_deal(admin.headers, client["id"])
    pipeline = await deals.pipeline(admin.headers)
    target = deals.stage(pipeline, "Qualified")
    stages = [{**s, "kind": "won"} if s["id"] == target["id"] else s for s in pipeline["stages"]]

    move = asyncio.create_task(
        deals.client.post(
            f"{API}/deals/{deal['id']}/move", json={"stage_id": target["id"]},
            headers=admin.headers,
        )
    )  # fmt: skip
    await asyncio.wait_for(pauser.reached.wait(), 10.0)
    retype = asyncio.create_task(
        deals.client.patch(
            f"{API}/pipelines/{pipeline['id']}", json={"stages": stages},
            headers={**admin.headers, "If-Match": f'"v{pipeline["version"]}"'},
        )
    )  # fmt: skip
    # the retype runs while the move is held: to its end, or until it waits for the move
    await asyncio.wait({retype}, timeout=1.0)
    pauser.go_on.set()
    moved, retyped = await move, await retype

    assert moved.status_code == 200, moved.text
    assert retyped.status_code in (200, 409), retyped.text
    row = await get_row(app, Deal, uuid.UUID(deal["id"]))
    stage = await get_row(app, Stage, row.stage_id)
    assert (row.stage_id, row.status) == (stage.id, stage.kind), (moved.json(), retyped.text)
    if retyped.status_code == 409:  # the move came first: a stage holding deals keeps its kind
        assert retyped.json()["type"] == "urn:crm2:problem:deals-in-use"
        assert stage.kind == "open"
