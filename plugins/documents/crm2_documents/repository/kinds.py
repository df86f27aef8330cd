"""Queries on the list of document kinds (not owned: every reader sees them)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_documents.models import Document, Kind


async def all_kinds(session: AsyncSession) -> list[Kind]:
    return list((await session.execute(select(Kind).order_by(col(Kind.key)))).scalars())


async def get_kind(session: AsyncSession, key: str) -> Kind | None:
    stmt = select(Kind).where(col(Kind.key) == key).execution_options(populate_existing=True)
    row: Kind | None = (await session.execute(stmt)).scalar_one_or_none()
    return row


async def in_use(session: AsyncSession, key: str) -> bool:
    stmt = select(col(Document.id)).where(col(Document.kind) == key).limit(1)
    return (await session.execute(stmt)).first() is not None
