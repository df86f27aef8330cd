"""``assert_plugin_contract()`` passes for a good plugin and names every breach of a bad one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends

from crm2_core.api import EventData, require
from crm2_core.testing import assert_plugin_contract
from crm2_hookspecs import Permission, PluginManifest, Principal, hookimpl


class Leaked(EventData, type="elsewhere.thing.happened", version=1):
    n: int


class Sloppy:
    manifest = PluginManifest(name="sloppy", title="Sloppy (test only)")

    @hookimpl
    def crm2_permissions(self) -> Sequence[Permission]:
        return [Permission("sloppy:read", "Read")]

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/sloppy")

        @router.get("/open")
        async def open_route() -> dict[str, str]:
            return {}

        @router.get("/guarded")
        async def guarded(
            principal: Annotated[Principal, Depends(require("sloppy:read"))],
        ) -> dict[str, str]:
            return {}

        @router.get("/public", openapi_extra={"x-crm2-auth": "public"})
        async def public() -> dict[str, str]:
            return {}

        return [router]


async def test_a_sloppy_plugin_fails_naming_each_breach(crm2_app_factory: Any) -> None:
    with pytest.raises(AssertionError) as failure:
        await assert_plugin_contract("sloppy", crm2_app_factory, extra_plugins=(Sloppy(),))
    message = str(failure.value)
    flagged = [line for line in message.splitlines() if "has no auth decision" in line]
    assert len(flagged) == 1, message
    assert flagged[0].startswith("- GET /api/v1/sloppy/open has no auth decision")


class Leaky:
    manifest = PluginManifest(name="leaky", title="Leaky (test only)")

    @hookimpl
    def crm2_event_types(self) -> Sequence[type]:
        return [Leaked]


async def test_a_plugin_the_core_refuses_fails_with_the_start_up_message(
    crm2_app_factory: Any,
) -> None:
    with pytest.raises(AssertionError, match=r"leaky does not start: .*elsewhere\.thing"):
        await assert_plugin_contract("leaky", crm2_app_factory, extra_plugins=(Leaky(),))
