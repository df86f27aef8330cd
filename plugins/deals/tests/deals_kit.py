"""Shared fixtures of the deals suite: an app with the plugin, its default data, signed-in users.

The core's kit empties every table after a test, including the rows the data
migration wrote, so ``deals`` puts the default pipelines and lost reasons back.
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from crm2_deals.models import LostReason, Pipeline, Stage
from sqlalchemy import func, select, update

from crm2_core.testing import Crm2TestApp, EventRecord, SignedInUser

API = "/api/v1/deals"
_VERSIONS = Path(__file__).parents[1] / "crm2_deals" / "migrations" / "versions"


def _default_data() -> ModuleType:
    """The data migration itself: one source for the default pipelines and lost reasons."""
    path = next(_VERSIONS.glob("*_deals_default_pipelines.py"))
    spec = importlib.util.spec_from_file_location("deals_default_pipelines", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def seed_defaults(app: Crm2TestApp) -> None:
    """Create the default pipelines and lost reasons unless they exist."""
    data = _default_data()
    async with app.context.session_factory() as session:
        if (await session.execute(select(func.count()).select_from(Pipeline))).scalar_one():
            return
        for name, (is_default, steps) in data.PIPELINES.items():
            pipeline = Pipeline(name=name, is_default=is_default)
            session.add(pipeline)
            for position, (stage_name, probability, kind) in enumerate(steps):
                session.add(
                    Stage(
                        pipeline_id=pipeline.id,
                        name=stage_name,
                        probability=probability,
                        kind=kind,
                        position=position,
                    )
                )
        session.add_all(LostReason(name=n) for n in data.LOST_REASONS)
        await session.commit()


User = SignedInUser  # the name every test here imports


class Deals:
    """The app plus the few helpers every deals test needs."""

    def __init__(self, app: Crm2TestApp) -> None:
        self.app = app
        self.client = app.client

    async def user(self, *roles: str) -> User:
        return await self.app.user(*roles)

    async def pipeline(self, headers: dict[str, str], name: str = "New business") -> Any:
        """A pipeline (with its stages) by name; ``stage(p, "Won")`` finds a stage in it."""
        items = (await self.client.get(f"{API}/pipelines", headers=headers)).json()["items"]
        return next(p for p in items if p["name"] == name)

    @staticmethod
    def stage(pipeline: dict[str, Any], name: str) -> dict[str, Any]:
        stage: dict[str, Any] = next(s for s in pipeline["stages"] if s["name"] == name)
        return stage

    async def create_client(self, headers: dict[str, str], **fields: Any) -> Any:
        body = {"kind": "person", "name": f"Client {uuid.uuid4().hex[:6]}", **fields}
        response = await self.client.post(f"{API}/clients", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()

    async def create_deal(self, headers: dict[str, str], client_id: str, **fields: Any) -> Any:
        body = {"title": "Deal", "client_id": client_id, "value": "100.00", "currency": "EUR"}
        body.update(fields)
        response = await self.client.post(f"{API}/deals", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()

    async def retype_start(self, headers: dict[str, str], pipeline: dict[str, Any]) -> Any:
        """PATCH ``pipeline`` (as read) with its first stage, where deals start, made won."""
        first = pipeline["stages"][0]
        assert first["kind"] == "open"
        stages = [{**s, "kind": "won"} if s["id"] == first["id"] else s for s in pipeline["stages"]]
        return await self.client.patch(
            f"{API}/pipelines/{pipeline['id']}", json={"stages": stages},
            headers={**headers, "If-Match": f'"v{pipeline["version"]}"'},
        )  # fmt: skip

    async def events(self, type_: str | None = None) -> list[EventRecord]:
        """Committed ``core_event`` rows, oldest first (optionally of one type)."""
        async with self.app.context.session_factory() as session:
            stmt = select(EventRecord).order_by(EventRecord.sequence)
            if type_ is not None:
                stmt = stmt.where(EventRecord.type == type_)
            return list((await session.execute(stmt)).scalars())


async def deals_with(crm2_app_factory: Any, *extra: Any) -> tuple[Deals, User, Any]:
    """An app with this plugin and the test plugins ``extra`` (hook implementations,
    enabled by their manifests' names), default pipelines in place; an admin, and a
    client of theirs (as the API answered it)."""
    names = ["deals", *(plugin.manifest.name for plugin in extra)]
    app: Crm2TestApp = await crm2_app_factory(plugins=names, extra_plugins=extra)
    await seed_defaults(app)
    deals = Deals(app)
    admin = await deals.user("admin")
    return deals, admin, await deals.create_client(admin.headers)


def edited_after_read(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, model: Any) -> None:
    """Make ``owner.name``, the read of the row a write is about (a DELETE's), bump the
    row's version right after it read it: another request's edit landing between the
    read and the write, which must then be conditional in SQL too (412)."""
    read = getattr(owner, name)

    async def read_then_edited(session: Any, *args: Any, **kwargs: Any) -> Any:
        found = await read(session, *args, **kwargs)
        bump = update(model).where(model.id == found.id).values(version=found.version + 1)
        await session.execute(bump.execution_options(synchronize_session=False))
        return found

    monkeypatch.setattr(owner, name, read_then_edited)


@pytest.fixture
async def deals(crm2_app_factory: Any) -> Deals:
    """An app with only the core and this plugin, default pipelines in place."""
    app: Crm2TestApp = await crm2_app_factory(plugins=["deals"])
    await seed_defaults(app)
    return Deals(app)


# The auth caches reload inside the request that finds them stale, in its task, with a
# transaction of their own: the role cache every ``role_cache_seconds`` (5 s by default)
# sends ``BEGIN;`` and two reads of ``auth_`` tables. ``sent_to_postgresql`` records the
# task's statements, so a test that counts them and ran longer than 5 s (under load)
# met a reload now and then: a ``BEGIN`` that is not the code under test's. A counting
# test holds the caches for its length (bounded far below these) instead.
STEADY_AUTH = {"auth": {"role_cache_seconds": 300, "credentials_cache_seconds": 3600}}


@pytest.fixture
async def counting_deals(crm2_app_factory: Any) -> Deals:
    """``deals`` whose auth caches do not reload during the test: for statement counts."""
    app: Crm2TestApp = await crm2_app_factory(plugins=["deals"], plugin_settings=STEADY_AUTH)
    await seed_defaults(app)
    return Deals(app)
