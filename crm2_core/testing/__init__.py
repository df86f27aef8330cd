"""crm2's testing kit: the fixtures our own tests use, shipped to plugin authors.

Installed as a pytest plugin (entry point ``pytest11``), so in any project
with crm2-core installed a test can write::

    @pytest.mark.crm2_plugins("deals")
    async def test_something(crm2):
        admin = await crm2.login("admin")
        response = await crm2.client.get("/api/v1/deals/deals", headers=admin)

See docs/plugins/testing.md.
"""

from __future__ import annotations

from typing import Any

from crm2_core.events.models import EventRecord
from crm2_core.testing.app import TEST_JWT_SECRET, Crm2TestApp, SignedInUser
from crm2_core.testing.contract import assert_plugin_contract
from crm2_core.testing.databases import TestDatabase
from crm2_core.testing.locks import waits_for_lock
from crm2_core.testing.migrations import PluginMigrations
from crm2_core.testing.permissions import PermissionVotes
from crm2_core.testing.processes import stop_process
from crm2_core.testing.statements import recorded_statements, sent_to_postgresql

__all__ = [
    "TEST_JWT_SECRET",
    "Crm2TestApp",
    "EventRecord",
    "PermissionVotes",
    "PluginMigrations",
    "SignedInUser",
    "TestDatabase",
    "assert_plugin_contract",
    "build_cli",
    "recorded_statements",
    "sent_to_postgresql",
    "stop_process",
    "waits_for_lock",
]


def build_cli() -> Any:
    """The ``crm2`` command group with every plugin's commands (for CliRunner tests)."""
    from crm2_core.cli.main import build_cli as build

    return build()
