"""Throw-away plugins inside a running app: lifecycle, routes, permissions, authentication."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path

import pytest
from fastapi import APIRouter

from crm2_core.bootstrap import build_app_context
from crm2_core.errors import ConfigurationError
from crm2_core.http.app import create_app
from crm2_core.settings import Settings
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import start_test_app
from crm2_core.testing.pytest_plugin import AppFactory
from crm2_hookspecs import PluginManifest, Principal, hookimpl


class Recorder:
    """Records its startup and shutdown into a list shared with the other recorders."""

    def __init__(self, name: str, calls: list[str], depends: tuple[str, ...] = ()) -> None:
        self.manifest = PluginManifest(name=name, title=name.title(), depends=depends)
        self._calls = calls

    @hookimpl
    def crm2_startup(self) -> None:
        self._calls.append(f"start {self.manifest.name}")

    @hookimpl
    def crm2_shutdown(self) -> Awaitable[None]:
        async def stop() -> None:
            self._calls.append(f"stop {self.manifest.name}")

        return stop()


async def test_startup_in_dependency_order_and_shutdown_in_reverse(
    crm2_settings: Settings,
) -> None:
    calls: list[str] = []
    plugins = (
        Recorder("delta", calls, depends=("bravo", "charlie")),
        Recorder("charlie", calls, depends=("zulu",)),
        Recorder("bravo", calls, depends=("zulu",)),
        Recorder("zulu", calls),
    )
    settings = crm2_settings.model_copy(update={"plugins": "delta"})
    app = await start_test_app(settings, extra_plugins=plugins)
    try:
        assert calls == ["start zulu", "start bravo", "start charlie", "start delta"]
    finally:
        await app.aclose()

    assert calls[4:] == ["stop delta", "stop charlie", "stop bravo", "stop zulu"]


class Hello:
    manifest = PluginManifest(name="hello", title="Hello")

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/hello")

        @router.get("/ping")
        async def ping() -> dict[str, str]:
            return {"pong": "hello"}

        return [router]


async def test_an_enabled_plugin_serves_its_routes(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(extra_plugins=(Hello(),))

    response = await crm2.client.get("/api/v1/hello/ping")

    assert response.status_code == 200
    assert response.json() == {"pong": "hello"}


async def test_a_disabled_plugin_serves_nothing(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(plugins=[], extra_plugins=(Hello(),))

    response = await crm2.client.get("/api/v1/hello/ping")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def stray_plugin(path: str) -> object:
    class Stray:
        manifest = PluginManifest(name="stray", title="Stray")

        @hookimpl
        def crm2_routers(self) -> Sequence[APIRouter]:
            router = APIRouter()

            @router.get(path)
            async def takeover() -> None:
                return None

            return [router]

    return Stray()


@pytest.mark.parametrize(
    "path", ["/api/v1/auth/takeover", "/api/v1/strayed/ping", "/takeover", "/api/v1/stray_x"]
)
async def test_a_router_outside_the_plugin_prefix_is_refused(tmp_path: Path, path: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'stray.db'}", plugins="stray"
    )
    context = build_app_context(settings, extra_plugins=(stray_plugin(path),))
    try:
        with pytest.raises(ConfigurationError) as error:
            create_app(context=context)
    finally:
        await context.aclose()

    assert str(error.value) == (
        f"stray serves {path}, outside its prefix /api/v1/stray: "
        "use APIRouter(prefix='/api/v1/stray')"
    )


def routes_plugin(name: str, *paths: str, method: str = "GET") -> object:
    """A plugin serving ``paths`` (under its own prefix) with ``method``."""

    class Routes:
        manifest = PluginManifest(name=name, title=name.title())

        @hookimpl
        def crm2_routers(self) -> Sequence[APIRouter]:
            router = APIRouter(prefix=f"/api/v1/{name}")
            for index, path in enumerate(paths):
                router.add_api_route(path, lambda: None, methods=[method], name=f"r{index}")
            return [router]

    return Routes()


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        (
            (routes_plugin("plugins", ""),),
            "plugins serves GET /api/v1/plugins, which core serves already",
        ),
        (
            (routes_plugin("twice", "/{item_id}", "/{other_id}"),),
            "twice serves GET /api/v1/twice/{other_id}, which twice serves already",
        ),
    ],
    ids=["a-core-route", "its-own-route-twice"],
)
async def test_a_route_another_already_serves_is_refused_naming_both(
    tmp_path: Path, plugins: tuple[object, ...], message: str
) -> None:
    """Starlette would answer with the first route and never reach the second, silently."""
    names = ",".join(p.manifest.name for p in plugins)  # type: ignore[attr-defined]
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", plugins=names
    )
    context = build_app_context(settings, extra_plugins=plugins)
    try:
        with pytest.raises(ConfigurationError) as error:
            create_app(context=context)
    finally:
        await context.aclose()

    assert str(error.value).startswith(message), str(error.value)


async def test_one_path_with_other_methods_is_no_collision(crm2_app_factory: AppFactory) -> None:
    class Writer:
        manifest = PluginManifest(name="shared", title="Shared")

        @hookimpl
        def crm2_routers(self) -> Sequence[APIRouter]:
            get, post = APIRouter(prefix="/api/v1/shared"), APIRouter(prefix="/api/v1/shared")
            get.add_api_route("/items", lambda: {"via": "get"}, methods=["GET"])
            post.add_api_route("/items", lambda: {"via": "post"}, methods=["POST"])
            return [get, post]

    crm2 = await crm2_app_factory(plugins=["shared"], extra_plugins=(Writer(),))
    assert (await crm2.client.get("/api/v1/shared/items")).json() == {"via": "get"}
    assert (await crm2.client.post("/api/v1/shared/items")).json() == {"via": "post"}


class FolderAsWebRoot:
    """Returns the folder to serve, not an application serving it."""

    manifest = PluginManifest(name="site", title="Site")

    @hookimpl
    def crm2_web_root(self) -> object:
        return Path("/srv/site")


async def test_a_web_root_that_is_no_asgi_application_is_refused_at_start_up(
    tmp_path: Path,
) -> None:
    """Otherwise every page outside /api/ answered 500 (TypeError: 'PosixPath' is not callable)."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", plugins="site"
    )
    context = build_app_context(settings, extra_plugins=(FolderAsWebRoot(),))
    try:
        with pytest.raises(ConfigurationError) as error:
            create_app(context=context)
    finally:
        await context.aclose()
    assert str(error.value).startswith(
        "site: crm2_web_root returned PosixPath, which is not an ASGI application"
    ), str(error.value)


class NoRoleAdmin:
    """Vetoes role administration for everyone, whatever their roles grant."""

    manifest = PluginManifest(name="vetoer", title="Vetoer")

    @hookimpl
    def crm2_check_permission(self, permission: str) -> bool | None:
        return False if permission == "auth:roles" else None


async def test_check_permission_veto_turns_a_granted_permission_into_403(
    crm2_app_factory: AppFactory,
) -> None:
    crm2 = await crm2_app_factory(extra_plugins=(NoRoleAdmin(),))
    admin = await crm2.login("admin")

    vetoed = await crm2.client.get("/api/v1/auth/roles", headers=admin)
    allowed = await crm2.client.get("/api/v1/auth/users", headers=admin)

    assert vetoed.status_code == 403
    assert vetoed.headers["content-type"] == "application/problem+json"
    assert allowed.status_code == 200


TEST_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000042")


class HeaderBackend:
    """Authenticates ``X-Test-User: <role>`` as a principal with that role."""

    manifest = PluginManifest(name="headerauth", title="Header auth")

    @hookimpl
    def crm2_authenticate(self, headers: Mapping[str, str]) -> Awaitable[Principal | None] | None:
        role = headers.get("x-test-user")
        if role is None:
            return None

        async def principal() -> Principal:
            return Principal(id=TEST_USER_ID, kind="test", roles=frozenset({role}), name=role)

        return principal()


@pytest.fixture
async def header_auth_app(crm2_app_factory: AppFactory) -> Crm2TestApp:
    return await crm2_app_factory(extra_plugins=(HeaderBackend(),))


async def test_custom_authenticate_backend_is_used(header_auth_app: Crm2TestApp) -> None:
    response = await header_auth_app.client.get(
        "/api/v1/auth/users", headers={"X-Test-User": "admin"}
    )

    assert response.status_code == 200, response.text


async def test_custom_backend_principal_gets_its_roles_permissions(
    header_auth_app: Crm2TestApp,
) -> None:
    response = await header_auth_app.client.get(
        "/api/v1/auth/users", headers={"X-Test-User": "viewer"}
    )

    assert response.status_code == 403


async def test_request_the_backend_does_not_claim_is_401(header_auth_app: Crm2TestApp) -> None:
    response = await header_auth_app.client.get("/api/v1/auth/users")

    assert response.status_code == 401


async def test_plugin_listing_is_for_admins_only(crm2: Crm2TestApp) -> None:
    viewer = await crm2.login("viewer")

    response = await crm2.client.get("/api/v1/plugins", headers=viewer)

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_plugin_listing_shows_the_builtin_plugins_with_status(crm2: Crm2TestApp) -> None:
    from crm2_core import __version__

    admin = await crm2.login("admin")

    response = await crm2.client.get("/api/v1/plugins", headers=admin)

    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()}
    assert rows["core"] == {
        "name": "core",
        "title": "crm2 core",
        "version": __version__,
        "enabled": True,
        "builtin": True,
        "depends": [],
        "status": "ok",
    }
    assert rows["auth"]["enabled"] is True
    assert rows["auth"]["depends"] == ["core"]
    assert rows["auth"]["status"] == "ok"


async def test_plugin_listing_shows_disabled_plugins(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(plugins=[], extra_plugins=(Hello(),))
    admin = await crm2.login("admin")

    response = await crm2.client.get("/api/v1/plugins", headers=admin)

    rows = {row["name"]: row for row in response.json()}
    assert rows["hello"]["enabled"] is False
    assert rows["hello"]["status"] == "disabled"
