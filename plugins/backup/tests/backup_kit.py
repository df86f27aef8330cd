"""Shared fixtures of the backup suite: an app with the plugin writing into the test's folder.

Test modules import from ``backup_kit`` (never from ``conftest``).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from crm2_backup import crypto
from crm2_backup.targets.postgres import PgAddress
from sqlalchemy import select

from crm2_core.api import JobRunner
from crm2_core.testing import Crm2TestApp, EventRecord
from crm2_hookspecs import PluginManifest, hookimpl

API = "/api/v1/backup"
KEY = crypto.new_key()


def backup_settings(folder: Path, **extra: Any) -> dict[str, Any]:
    return {
        "dir": str(folder / "backups"),
        "key": crypto.encode_key(KEY),
        "key_file": str(folder / "unused.key"),
        "schedule": "",
        "verify_schedule": "",
        **extra,
    }


async def event_types(
    app: Crm2TestApp, prefix: str = "backup.", *, requests: bool = False
) -> list[str]:
    """The events published; the ``*.requested`` ones (where a worker runs sets and drills)
    on request."""
    async with app.context.session_factory() as session:
        rows = await session.execute(
            select(EventRecord.type)
            .where(EventRecord.type.startswith(prefix))
            .order_by(EventRecord.sequence)  # type: ignore[attr-defined]
        )
        return [t for t in rows.scalars() if requests or not t.endswith(".requested")]


async def settle(app: Crm2TestApp, within: float = 60.0) -> None:
    """Until the queued sets ran: in this process's JobRunner (SQLite) or a handler."""
    for _ in range(2):  # a set's events may start a handler, a handler a drill
        async with asyncio.timeout(within):
            await JobRunner.of(app.context).wait_idle()
        await app.settle_events(within)


async def run_set(
    app: Crm2TestApp, headers: dict[str, str], *, verify: bool = False
) -> dict[str, Any]:
    """``POST /sets`` (202, queued), wait for the background work, the set as polled."""
    response = await app.client.post(
        f"{API}/sets", headers=headers, params={"verify": "true"} if verify else None
    )
    assert response.status_code == 202, response.text
    queued = response.json()
    assert response.headers["Location"] == f"{API}/sets/{queued['id']}"
    assert queued["status"] == queued["state"] == "queued" and queued["done"] is False
    await settle(app)
    polled = await app.client.get(response.headers["Location"], headers=headers)
    assert polled.status_code == 200, polled.text
    body: dict[str, Any] = polled.json()
    assert body["done"] is True and "Retry-After" not in polled.headers
    return body


async def run_drill(app: Crm2TestApp, headers: dict[str, str], set_id: str) -> dict[str, Any]:
    """``POST /sets/{id}/verify`` (202, a queued run), wait for it, the drill it recorded."""
    response = await app.client.post(f"{API}/sets/{set_id}/verify", headers=headers)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert response.headers["Location"] == f"{API}/runs/{queued['id']}"
    assert queued["kind"] == "verify" and queued["set_id"] == set_id
    assert queued["status"] in ("queued", "running") and queued["done"] is False
    await settle(app)
    polled = await app.client.get(response.headers["Location"], headers=headers)
    assert polled.status_code == 200, polled.text
    run = polled.json()
    assert run["done"] is True and "Retry-After" not in polled.headers, run
    assert run["drill_id"] is not None, run
    drill = await app.client.get(f"{API}/drills/{run['drill_id']}", headers=headers)
    assert drill.status_code == 200, drill.text
    body: dict[str, Any] = drill.json()
    assert run["status"] == ("ok" if body["ok"] else "failed")
    return body


_DROPS: list[tuple[str, threading.Thread, list[BaseException]]] = []


def drop_database_later(server: PgAddress, name: str) -> None:
    """``DROP DATABASE name`` on ``server``, in a thread of its own: the test goes on at once.

    PostgreSQL's DROP DATABASE forces an immediate checkpoint of the whole cluster, which
    on a busy test server takes seconds (most of a restore test's time) and proves nothing
    the test asks; ``dropped_databases`` waits for every drop at the end of the session
    and fails it when one did not happen.
    """
    failures: list[BaseException] = []

    async def drop() -> None:
        conn = await server.connect()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def run() -> None:
        try:
            asyncio.run(drop())
        except BaseException as exc:  # reported by dropped_databases
            failures.append(exc)

    thread = threading.Thread(target=run, name=f"drop {name}", daemon=True)
    thread.start()
    _DROPS.append((name, thread, failures))


@pytest.fixture(scope="session", autouse=True)
def dropped_databases() -> Iterator[None]:
    """Every :func:`drop_database_later` done before the session ends."""
    yield
    left = []
    for name, thread, failures in _DROPS:
        thread.join(120)
        if thread.is_alive() or failures:
            left.append(f"{name}: {failures or 'still dropping after 120 s'}")
    assert not left, f"databases not dropped: {left}"


def sentinel() -> str:
    """A value that must never appear in plaintext in an artefact."""
    return f"sentinel-{uuid.uuid4().hex}"


@pytest.fixture
async def backup(crm2_app_factory: Any, tmp_path: Path) -> Crm2TestApp:
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup"], plugin_settings={"backup": backup_settings(tmp_path)}
    )
    return app


class TargetPlugin:
    """A plugin of a test's own that adds one backup target through the hook."""

    def __init__(self, name: str, target: Any) -> None:
        self.manifest = PluginManifest(name=name, title=name.title())
        self.target = target

    @hookimpl(optionalhook=True)
    def crm2_backup_targets(self, context: Any) -> Sequence[Any]:
        return [self.target]


async def app_with_target(
    crm2_app_factory: Any, tmp_path: Path, name: str, target: Any
) -> Crm2TestApp:
    """The backup plugin with ``target`` (a plugin named ``name``) as its only target."""
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup", name],
        extra_plugins=(TargetPlugin(name, target),),
        plugin_settings={"backup": backup_settings(tmp_path, targets=name)},
    )
    return app
