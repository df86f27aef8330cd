"""Shared fixtures of the backup suite: an app with the plugin writing into the test's folder.

Test modules import from ``backup_kit`` (never from ``conftest``).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from crm2_backup import crypto
from sqlalchemy import select

from crm2_core.testing import Crm2TestApp, EventRecord

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


async def event_types(app: Crm2TestApp, prefix: str = "backup.") -> list[str]:
    async with app.context.session_factory() as session:
        rows = await session.execute(
            select(EventRecord.type)
            .where(EventRecord.type.startswith(prefix))
            .order_by(EventRecord.sequence)  # type: ignore[attr-defined]
        )
        return list(rows.scalars())


def sentinel() -> str:
    """A value that must never appear in plaintext in an artefact."""
    return f"sentinel-{uuid.uuid4().hex}"


@pytest.fixture
async def backup(crm2_app_factory: Any, tmp_path: Path) -> Crm2TestApp:
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup"], plugin_settings={"backup": backup_settings(tmp_path)}
    )
    return app
