"""``crm2 seed demo``: a few small generated documents attached to demo records.

Runs after deals' seed when deals is enabled (plugins seed in dependency order,
ties by name) and reads deals' clients by table name: documents imports
nothing of deals. Without deals the documents belong to the first admin.
Seeding twice adds nothing (documents carry the ``demo`` tag).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any

from sqlalchemy import column, select, table
from sqlmodel import col

from crm2_documents.models import Document
from crm2_documents.service.documents import identity, search_text
from crm2_documents.service.versions import store_bytes

_client = table("deals_client", column("id"), column("name"), column("owner_id"))
_user = table("auth_user", column("id"), column("is_active"))
_user_role = table("auth_user_role", column("user_id"), column("role_name"))


def _uuid(value: Any) -> uuid.UUID | None:
    """Ids read through a bare ``table()`` come back as text on SQLite."""
    return None if value is None else uuid.UUID(str(value))


def seed(name: str, context: Any) -> Awaitable[Any] | None:
    return _demo(context) if name == "demo" else None


def tiny_pdf(text: str) -> bytes:
    """A small valid one-page PDF saying ``text``."""
    safe = text.replace("\\", "").replace("(", "").replace(")", "")[:80]
    stream = f"BT /F1 18 Tf 72 720 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


async def _targets(session: Any, context: Any) -> list[tuple[str | None, str | None, Any, str]]:
    """(link kind, link id, owner, name) of the records to attach demo documents to."""
    if context.is_enabled("deals"):
        rows = (await session.execute(select(_client).limit(6))).all()
        if rows:
            return [("deals.client", str(r.id), _uuid(r.owner_id), r.name) for r in rows]
    admin = (
        await session.execute(
            select(_user.c.id)
            .join(_user_role, _user_role.c.user_id == _user.c.id)
            .where(_user_role.c.role_name == "admin", _user.c.is_active.is_(True))
            .limit(1)
        )
    ).scalar_one_or_none()
    return [(None, None, _uuid(admin), "crm2")] if admin is not None else []


async def _demo(context: Any) -> None:
    from crm2_core.api import publish
    from crm2_documents.events import DocumentCreated

    async with context.session_factory() as session:
        existing = await session.execute(
            select(col(Document.id)).where(col(Document.title).like("Demo: %"))
        )
        if existing.first() is not None:
            return
        for link_kind, link_id, owner, name in await _targets(session, context):
            for kind, title in (("policy", "Policy scan"), ("identity", "ID copy")):
                document = Document(
                    title=f"Demo: {title} - {name}",
                    kind=kind,
                    tags=["demo"],
                    tag_keys=["demo"],
                    link_kind=link_kind,
                    link_id=link_id,
                    owner_id=owner,
                    creator_id=owner,
                    search_text=search_text(f"Demo: {title} - {name}", ["demo"]),
                )
                session.add(document)
                await session.flush()
                publish(
                    session,
                    DocumentCreated(creator_id=owner, **identity(document)),
                    subject=document.id,
                )
                pdf = tiny_pdf(f"{title} of {name}")
                await store_bytes(session, context, document, f"{title} {name}.pdf", pdf)
        await session.commit()
