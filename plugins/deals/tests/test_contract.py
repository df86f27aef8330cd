"""deals keeps the plugin contract (the testing kit's ``assert_plugin_contract``)."""

from __future__ import annotations

from typing import Any

from crm2_core.testing import assert_plugin_contract


async def test_deals_keeps_the_plugin_contract(crm2_app_factory: Any) -> None:
    await assert_plugin_contract("deals", crm2_app_factory)
