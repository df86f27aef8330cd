"""The admin-managed list of document kinds and what content each accepts."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import check_version, update_versioned, utcnow
from crm2_documents.content import EXTENSIONS, NEVER_ACCEPTED
from crm2_documents.errors import InvalidKind, KindExists, KindNotFound
from crm2_documents.models import Kind
from crm2_documents.repository import kinds as repo
from crm2_documents.schemas.kinds import KindCreate, KindUpdate


def _check_types(types: list[str]) -> list[str]:
    unknown = sorted(set(types) - set(EXTENSIONS))
    if unknown:
        raise InvalidKind(f"unknown content types {unknown}; known: {sorted(EXTENSIONS)}")
    refused = sorted(set(types) & NEVER_ACCEPTED)
    if refused:
        raise InvalidKind(f"no kind may accept {refused}: HTML and executables are never taken")
    if len(set(types)) != len(types):
        raise InvalidKind("allowed_types must be unique")
    return types


async def get_kind(session: AsyncSession, key: str) -> Kind:
    kind = await repo.get_kind(session, key)
    if kind is None:
        raise KindNotFound(f"no document kind {key!r}")
    return kind


async def create_kind(session: AsyncSession, data: KindCreate) -> Kind:
    if await repo.get_kind(session, data.key) is not None:
        raise KindExists(f"a document kind {data.key!r} exists")
    kind = Kind(
        key=data.key,
        title=data.title,
        allowed_types=_check_types(list(data.allowed_types)),
        active=data.active,
    )
    session.add(kind)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request created it first
        raise KindExists(f"a document kind {data.key!r} exists") from exc
    return kind


async def update_kind(session: AsyncSession, key: str, if_match: str, data: KindUpdate) -> Kind:
    kind = await get_kind(session, key)
    version = check_version(if_match, kind.version)
    sent = data.model_dump(exclude_unset=True)
    values: dict[str, Any] = {k: v for k, v in sent.items() if getattr(kind, k) != v}
    if "allowed_types" in values:
        _check_types(values["allowed_types"])
    if not values:
        return kind
    values["updated_at"] = utcnow()
    await update_versioned(session, Kind, Kind.key == key, version, values)
    await session.refresh(kind)
    return kind
