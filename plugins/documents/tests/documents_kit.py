"""Shared fixtures of the documents suite: an app with the plugin, users, upload helpers.

Test modules import from ``documents_kit`` (never from ``conftest``).
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from crm2_documents.models import Kind
from sqlalchemy import select

from crm2_core.testing import Crm2TestApp, EventRecord, SignedInUser

API = "/api/v1/documents"
_VERSIONS = Path(__file__).parents[1] / "crm2_documents" / "migrations" / "versions"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 4 + b"%%EOF\n"
User = SignedInUser


def default_kinds_migration() -> ModuleType:
    path = next(_VERSIONS.glob("*_documents_default_kinds.py"))
    spec = importlib.util.spec_from_file_location("documents_default_kinds", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def seed_default_kinds(app: Crm2TestApp) -> None:
    """Put the shipped kinds back (the test kit empties every table after each test)."""
    data = default_kinds_migration()
    async with app.context.session_factory() as session:
        have = set((await session.execute(select(Kind.key))).scalars())
        for kind in data.DEFAULT_KINDS:
            if kind["key"] not in have:
                session.add(Kind(**kind))
        await session.commit()


class Docs:
    """The app plus the helpers every documents test needs."""

    def __init__(self, app: Crm2TestApp, root: Path) -> None:
        self.app = app
        self.client = app.client
        self.root = root

    async def user(self, *roles: str) -> User:
        return await self.app.user(*roles)

    async def create(self, user: User, **fields: Any) -> dict[str, Any]:
        body = {"title": f"Doc {uuid.uuid4().hex[:6]}", "kind": "other", **fields}
        response = await self.client.post(f"{API}/documents", json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def upload(
        self,
        user: User,
        document_id: str,
        data: bytes = PDF,
        filename: str = "scan.pdf",
        content_type: str = "application/pdf",
        headers: dict[str, str] | None = None,
    ) -> Any:
        return await self.client.post(
            f"{API}/documents/{document_id}/versions",
            files={"file": (filename, data, content_type)},
            headers={**user.headers, **(headers or {})},
        )

    async def get(self, user: User, document_id: str) -> Any:
        return await self.client.get(f"{API}/documents/{document_id}", headers=user.headers)

    async def events(self, type_: str | None = None) -> list[EventRecord]:
        async with self.app.context.session_factory() as session:
            stmt = select(EventRecord).order_by(EventRecord.sequence)
            if type_ is not None:
                stmt = stmt.where(EventRecord.type == type_)
            return list((await session.execute(stmt)).scalars())

    def stored_files(self) -> list[Path]:
        """Every file the local backend holds under a real key (temporary files excluded)."""
        return sorted(p for p in self.root.rglob("*") if p.is_file() and ".incoming" not in p.parts)


async def make_docs(
    factory: Any,
    root: Path,
    plugins: list[str] | None = None,
    extra_plugins: tuple[object, ...] = (),
    **settings: Any,
) -> Docs:
    app: Crm2TestApp = await factory(
        plugins=plugins or ["documents"],
        extra_plugins=extra_plugins,
        plugin_settings={"documents": {"local_root": str(root), **settings}},
    )
    await seed_default_kinds(app)
    return Docs(app, root)


@pytest.fixture
async def docs(crm2_app_factory: Any, tmp_path: Path) -> Docs:
    """An app with only the core and this plugin, files under a temporary root."""
    return await make_docs(crm2_app_factory, tmp_path / "files")
