"""Plugins extend tasks through its own hook: veto a task being created or changed."""

from __future__ import annotations

from typing import Any

from tasks_kit import API, Tasks

from crm2_core.testing import Crm2TestApp
from crm2_hookspecs import PluginManifest, hookimpl


class NoFridayDeploys:
    """A third-party rule, implemented without depending on tasks."""

    manifest = PluginManifest(name="nofriday", title="No Friday deploys (test only)")

    @hookimpl(optionalhook=True)
    def crm2_tasks_validate_change(self, change: Any) -> str | None:
        if "deploy" in str(change.after.get("title", "")).lower():
            return "deploys are planned in the change calendar"
        if change.action == "update" and "priority" in change.changed:
            return "priorities are set by the team lead"
        return None


async def _app(crm2_app_factory: Any) -> Tasks:
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["tasks", "nofriday"], extra_plugins=(NoFridayDeploys(),)
    )
    return Tasks(app)


async def test_a_plugin_vetoes_creating_and_changing_a_task(crm2_app_factory: Any) -> None:
    tasks = await _app(crm2_app_factory)
    agent = await tasks.user("agent")

    refused = await tasks.client.post(
        f"{API}/tasks", json={"title": "Deploy v2"}, headers=agent.headers
    )
    made = await tasks.client.post(
        f"{API}/tasks", json={"title": "Call Ada"}, headers=agent.headers
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("tasks-change-vetoed")
    assert "nofriday refused this change: deploys are planned" in refused.json()["detail"]
    assert made.status_code == 201, made.text

    url = f"{API}/tasks/{made.json()['id']}"
    etag = {"If-Match": made.headers["etag"]}
    vetoed = await tasks.client.patch(url, json={"priority": "high"}, headers=agent.headers | etag)
    allowed = await tasks.client.patch(
        url, json={"title": "Call Ada back"}, headers=agent.headers | etag
    )
    assert vetoed.status_code == 422 and "team lead" in vetoed.json()["detail"]
    assert allowed.status_code == 200, allowed.text


async def test_the_optional_hook_is_harmless_without_tasks(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory(plugins=["nofriday"], extra_plugins=(NoFridayDeploys(),))
    assert app.context.plugins.is_enabled("nofriday")
