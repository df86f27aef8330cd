"""Who sees every greeting honours ``crm2_check_permission`` on the export and the owner
rule as well as on get and list: the example passed ``GREETINGS.visibility(principal)``
(the roles alone) there, and plugin authors copy it."""

from __future__ import annotations

import uuid

import crm2_hello.plugin
from crm2_core.testing.pytest_plugin import AppFactory
from crm2_hookspecs import PluginManifest, Principal, hookimpl

GREETINGS = "/api/v1/hello/greetings"


class Branches:
    """A third-party rule: the users it confines lose ``hello:all_records``."""

    manifest = PluginManifest(name="branches", title="Branches (test only)", depends=("hello",))

    def __init__(self) -> None:
        self.confined: set[uuid.UUID] = set()

    @hookimpl
    def crm2_check_permission(self, principal: Principal, permission: str) -> bool | None:
        if permission == "hello:all_records" and principal.id in self.confined:
            return False
        return None


async def test_a_manager_a_hook_denies_all_records_exports_and_assigns_only_their_own(
    crm2_app_factory: AppFactory,
) -> None:
    rule = Branches()
    app = await crm2_app_factory(extra_plugins=(crm2_hello.plugin, rule))
    manager, agent = await app.user("manager"), await app.user("agent")
    theirs = await app.client.post(GREETINGS, json={"name": "Zed"}, headers=agent.headers)
    assert theirs.status_code == 201, theirs.text
    rule.confined.add(manager.id)
    exported = await app.client.get(f"{GREETINGS}/export", headers=manager.headers)
    assert exported.status_code == 200, exported.text
    assert "Zed" not in exported.text
    given = await app.client.post(
        GREETINGS, json={"name": "x", "owner_id": str(agent.id)}, headers=manager.headers
    )
    assert given.status_code == 403, given.text
    rule.confined.clear()
    exported = await app.client.get(f"{GREETINGS}/export", headers=manager.headers)
    assert "Zed" in exported.text
