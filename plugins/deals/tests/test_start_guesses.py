"""Where a new deal starts is guessed per application, not per process.

The guesses were a module-level dict: every app in one process (tests, an embedded
server beside a CLI command) shared them, another app's pipeline ids included.
"""

from __future__ import annotations

from typing import Any

from deals_kit import STEADY_AUTH, Deals, seed_defaults

from crm2_core.testing import Crm2TestApp, sent_to_postgresql


def _sent_kinds(sent: list[str]) -> list[str]:
    return [s.split()[0].rstrip(";") for s in sent if "auth_" not in s]


async def _deals(crm2_app_factory: Any) -> Deals:
    app: Crm2TestApp = await crm2_app_factory(plugins=["deals"], plugin_settings=STEADY_AUTH)
    await seed_defaults(app)
    return Deals(app)


async def test_a_new_app_does_not_start_deals_on_another_apps_guess(
    crm2_app_factory: Any,
) -> None:
    first = await _deals(crm2_app_factory)
    admin = await first.user("admin")
    client = await first.create_client(admin.headers)
    await first.create_deal(admin.headers, client["id"])  # first's guess: "New business"
    second = await _deals(crm2_app_factory)
    other = await second.user("admin")
    pipeline = await second.pipeline(other.headers)  # its auth caches warm
    await second.app.settle_events()

    with sent_to_postgresql() as sent:
        deal = await second.create_deal(other.headers, client["id"], title="Own read")

    assert deal["stage_id"] == second.stage(pipeline, "Lead")["id"]
    if second.app.context.engine.dialect.name == "postgresql":
        # its own first read (visible client + first open stage), then the write
        assert _sent_kinds(sent) == ["SELECT", "WITH"], sent
