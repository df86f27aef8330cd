"""Who sees every greeting honours ``crm2_check_permission`` on the export and the owner
rule as well as on get and list: the example passed ``GREETINGS.visibility(principal)``
(the roles alone) there, and plugin authors copy it."""

from __future__ import annotations

import crm2_hello.plugin
from crm2_core.testing import PermissionVotes
from crm2_core.testing.pytest_plugin import AppFactory

GREETINGS = "/api/v1/hello/greetings"


async def test_a_manager_a_hook_denies_all_records_exports_and_assigns_only_their_own(
    crm2_app_factory: AppFactory,
) -> None:
    rule = PermissionVotes("hello:all_records", depends=("hello",))  # a branch rule
    app = await crm2_app_factory(extra_plugins=(crm2_hello.plugin, rule))
    manager, agent = await app.user("manager"), await app.user("agent")
    theirs = await app.client.post(GREETINGS, json={"name": "Zed"}, headers=agent.headers)
    assert theirs.status_code == 201, theirs.text
    rule.deny(manager.id)
    exported = await app.client.get(f"{GREETINGS}/export", headers=manager.headers)
    assert exported.status_code == 200, exported.text
    assert "Zed" not in exported.text
    given = await app.client.post(
        GREETINGS, json={"name": "x", "owner_id": str(agent.id)}, headers=manager.headers
    )
    assert given.status_code == 403, given.text
    rule.votes.clear()
    exported = await app.client.get(f"{GREETINGS}/export", headers=manager.headers)
    assert "Zed" in exported.text
