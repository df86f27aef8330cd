"""``GET /api/v1/console/views`` and the web root inside the real app: the console shows
only enabled plugins' sections the user may open, third-party ones included."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from crm2_console.errors import BadConsoleView

from crm2_core.testing.pytest_plugin import AppFactory
from crm2_hookspecs import ConsoleView, Permission, PluginManifest, hookimpl


class Notes:
    """A third-party plugin the console has never heard of."""

    manifest = PluginManifest(name="notes", title="Notes")

    @hookimpl
    def crm2_permissions(self) -> Sequence[Permission]:
        return [Permission("notes:read", "Read notes", ("admin", "manager"))]

    @hookimpl
    def crm2_console_views(self) -> Sequence[ConsoleView]:
        return [
            ConsoleView(
                key="notes.all",
                title="Notes",
                titles={"ru": "Заметки"},
                list_path="/api/v1/notes/notes",
                permission="notes:read",
                columns=("text",),
                form=("text",),
            )
        ]


class Broken:
    manifest = PluginManifest(name="broken", title="Broken")

    @hookimpl
    def crm2_console_views(self) -> Sequence[object]:
        return [{"key": "broken.x"}]


@pytest.fixture
def build(tmp_path: Path) -> dict[str, dict[str, str]]:
    (tmp_path / "index.html").write_text("<!doctype html><title>crm2 console</title>")
    return {"console": {"dist_dir": str(tmp_path)}}


async def test_the_views_of_enabled_plugins_that_the_user_may_open(
    crm2_app_factory: AppFactory,
) -> None:
    crm2 = await crm2_app_factory(plugins=["console", "deals", "notes"], extra_plugins=(Notes(),))

    agent = await crm2.client.get("/api/v1/console/views", headers=await crm2.login("agent"))
    manager = await crm2.client.get("/api/v1/console/views", headers=await crm2.login("manager"))
    admin = await crm2.client.get("/api/v1/console/views", headers=await crm2.login("admin"))

    assert agent.status_code == 200
    keys = {role: [v["key"] for v in r.json()["views"]] for role, r in
            (("agent", agent), ("manager", manager), ("admin", admin))}  # fmt: skip
    deals = ["deals.board", "deals.list", "deals.clients", "deals.policies", "deals.activities"]
    assert keys["agent"] == deals
    assert keys["manager"] == keys["agent"] + ["notes.all"]
    assert keys["admin"] == keys["manager"] + ["auth.users", "auth.roles"]
    notes = manager.json()["views"][-1]
    assert notes["plugin"] == "notes" and notes["titles"] == {"ru": "Заметки"}
    assert {"console", "deals", "notes"} <= {p["name"] for p in admin.json()["plugins"]}
    # which versions run is for core:plugins (GET /api/v1/plugins), not every user
    assert all(set(p) == {"name", "title"} for p in agent.json()["plugins"])


async def test_a_reader_who_may_not_write_gets_no_form_or_action_buttons(
    crm2_app_factory: AppFactory,
) -> None:
    crm2 = await crm2_app_factory(plugins=["console", "deals", "tasks", "payments", "documents"])

    viewer = await crm2.client.get("/api/v1/console/views", headers=await crm2.login("viewer"))
    agent = await crm2.client.get("/api/v1/console/views", headers=await crm2.login("agent"))

    read_only = {v["key"]: v for v in viewer.json()["views"]}
    writable = {v["key"]: v for v in agent.json()["views"]}
    # a viewer reads these sections but every create, edit and action there is a 403
    sections = ("deals.clients", "deals.list", "tasks.mine", "payments.payments")
    for key in (*sections, "documents.documents"):
        view = read_only[key]
        assert (view["form"], view["edit"], view["actions"]) == ([], [], []), key
    assert read_only["deals.clients"]["columns"] == writable["deals.clients"]["columns"]
    assert writable["deals.clients"]["form"] and writable["deals.clients"]["edit"]
    assert writable["tasks.mine"]["actions"] == ["complete"]
    assert writable["tasks.mine"]["write_permission"] == "tasks:write"
    # and the server does refuse them: what the console no longer offers
    refused = await crm2.client.post(
        "/api/v1/deals/clients", json={"kind": "person", "name": "x"},
        headers=await crm2.login("viewer"),
    )  # fmt: skip
    assert refused.status_code == 403


async def test_a_view_without_write_permission_is_written_by_its_readers(
    crm2_app_factory: AppFactory,
) -> None:
    crm2 = await crm2_app_factory(plugins=["console", "notes"], extra_plugins=(Notes(),))

    manager = await crm2.client.get("/api/v1/console/views", headers=await crm2.login("manager"))

    notes = next(v for v in manager.json()["views"] if v["key"] == "notes.all")
    assert notes["form"] == ["text"] and notes["write_permission"] == "notes:read"


async def test_a_disabled_plugin_has_no_section(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(plugins=["console", "notes"], extra_plugins=(Notes(),))

    body = (await crm2.client.get("/api/v1/console/views", headers=await crm2.login())).json()

    assert not [v for v in body["views"] if v["plugin"] == "deals"]
    assert "deals" not in {p["name"] for p in body["plugins"]}


async def test_views_need_a_signed_in_user(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(plugins=["console"])
    response = await crm2.client.get("/api/v1/console/views")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_plugin_returning_something_else_stops_start_up(
    crm2_app_factory: AppFactory,
) -> None:
    with pytest.raises(BadConsoleView, match="broken returned"):
        await crm2_app_factory(plugins=["console", "broken"], extra_plugins=(Broken(),))


class Twice:
    manifest = PluginManifest(name="twice", title="Twice")

    @hookimpl
    def crm2_console_views(self) -> Sequence[ConsoleView]:
        view = ConsoleView(
            key="twice.all", title="All", list_path="/api/v1/twice/x", permission="twice:read"
        )
        return [view, ConsoleView(**{**view.__dict__, "title": "Again"})]


async def test_two_views_with_one_key_stop_start_up(crm2_app_factory: AppFactory) -> None:
    """The console finds a section by its key: the second one could never be opened."""
    with pytest.raises(BadConsoleView, match=r"twice returned two views keyed 'twice\.all'"):
        await crm2_app_factory(plugins=["console", "twice"], extra_plugins=(Twice(),))


async def test_the_console_serves_the_web_root_and_leaves_the_api_alone(
    crm2_app_factory: AppFactory, build: dict[str, dict[str, str]]
) -> None:
    crm2 = await crm2_app_factory(plugins=["console"], plugin_settings=build)

    page = await crm2.client.get("/")
    unknown_api = await crm2.client.get("/api/v1/nothing-here")
    wrong_method = await crm2.client.delete("/api/v1/auth/login")
    health = await crm2.client.get("/healthz")

    assert page.status_code == 200 and b"crm2 console" in page.content
    assert page.headers["cache-control"] == "no-cache"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert unknown_api.status_code == 404
    assert unknown_api.headers["content-type"] == "application/problem+json"
    assert wrong_method.status_code == 405
    assert health.status_code == 200 and health.headers["content-type"] == "application/json"


async def test_switched_off_the_web_root_is_the_api_404(
    crm2_app_factory: AppFactory, build: dict[str, dict[str, str]]
) -> None:
    crm2 = await crm2_app_factory(plugins=["deals"])

    page = await crm2.client.get("/")
    views = await crm2.client.get("/api/v1/console/views", headers=await crm2.login())

    assert page.status_code == 404
    assert page.headers["content-type"] == "application/problem+json"
    assert views.status_code == 404


def test_a_view_key_must_name_its_plugin_and_paths_the_api() -> None:
    with pytest.raises(ValueError, match=r"plugin\.view"):
        ConsoleView(key="Notes", title="x", list_path="/api/v1/notes", permission="notes:read")
    with pytest.raises(ValueError, match="list_path"):
        ConsoleView(key="notes.all", title="x", list_path="/notes", permission="notes:read")


@pytest.mark.parametrize("name", ["limit", "cursor"])
def test_a_view_filter_named_like_a_paging_parameter_is_refused(name: str) -> None:
    """The console sends limit and cursor itself: such a filter's value never reached the list."""
    with pytest.raises(ValueError, match=rf"notes\.all.*filter '{name}' is a paging parameter"):
        ConsoleView(
            key="notes.all",
            title="x",
            list_path="/api/v1/notes",
            permission="notes:read",
            filters=("q", name),
        )
    assert ConsoleView(
        key="notes.all",
        title="x",
        list_path="/api/v1/notes",
        permission="notes:read",
        filters=("q", "sort"),
    ).filters == ("q", "sort")


def _methods(paths: dict[str, dict[str, object]], path: str) -> set[str]:
    """The methods /openapi.json has for ``path``; its ``{…}`` and the route's match any segment."""
    wanted = re.sub(r"\{[^}]+\}", "{}", path)
    found: set[str] = set()
    for route, methods in paths.items():
        pattern = re.escape(re.sub(r"\{[^}]+\}", "{}", route)).replace(r"\{\}", "[^/]+")
        if re.fullmatch(pattern, wanted) or re.fullmatch(pattern, path):
            found |= set(methods)
    return found


async def test_every_installed_plugins_views_name_real_routes_schemas_and_fields(
    crm2_app_factory: AppFactory,
) -> None:
    """The console renders views from /openapi.json: a view naming a route, a schema or a field
    that is not there would show an empty column or form field instead of failing. Checked for
    every plugin installed here (payments, documents, … as they land)."""
    own = ("console", "deals", "tasks", "payments", "documents", "notifications", "backup")
    installed = [name for name in own if importlib.util.find_spec(f"crm2_{name}")]
    crm2 = await crm2_app_factory(plugins=installed)
    admin = await crm2.login("admin")
    views = (await crm2.client.get("/api/v1/console/views", headers=admin)).json()["views"]
    openapi = (await crm2.client.get("/openapi.json")).json()
    paths = openapi["paths"]
    schemas = openapi["components"]["schemas"]
    problems: list[str] = []
    for view in views:
        key = view["key"]
        if "get" not in _methods(paths, view["list_path"]):
            problems.append(f"{key}: no GET {view['list_path']}")
        for kind, fields in (
            ("item_schema", view["columns"]),
            ("create_schema", view["form"]),
            ("update_schema", view["edit"]),
        ):
            name = view[kind]
            if not name:
                continue
            properties = schemas.get(name, {}).get("properties")
            if properties is None:
                problems.append(f"{key}: {kind} {name} is not in /openapi.json")
                continue
            problems += [f"{key}: {name} has no field {f}" for f in fields if f not in properties]
        if view["form"] and "post" not in _methods(paths, view["create_path"]):
            problems.append(f"{key}: no POST {view['create_path']}")
        if view["edit"] and "patch" not in _methods(paths, view["item_path"]):
            problems.append(f"{key}: no PATCH {view['item_path']}")
        for action in view["actions"]:
            if "post" not in _methods(paths, f"{view['item_path']}/{action}"):
                problems.append(f"{key}: no POST {view['item_path']}/{action}")
    assert problems == []
    assert {v["plugin"] for v in views} >= {"auth", "deals", "tasks"}
