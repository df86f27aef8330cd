"""Bodies of the admin-managed list of document kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from crm2_core.api import RequestModel, ResponseModel, UpdateModel
from crm2_documents.content import EXTENSIONS, NEVER_ACCEPTED
from crm2_documents.schemas.documents import TEXT_DOC, KindKey, visible_text

MediaType = Annotated[
    str, Field(min_length=3, max_length=100, pattern=r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")
]
AllowedTypes = Annotated[
    list[MediaType],
    Field(
        min_length=1,
        max_length=30,
        description=f"content types, of: {sorted(set(EXTENSIONS) - NEVER_ACCEPTED)}",
    ),
]
KindTitle = Annotated[
    str,
    Field(min_length=1, max_length=100, json_schema_extra=TEXT_DOC),
    AfterValidator(visible_text(100, "a title")),
]


class KindCreate(RequestModel):
    key: KindKey
    title: KindTitle
    allowed_types: AllowedTypes
    active: bool = True


class KindUpdate(UpdateModel):
    title: KindTitle | None = None
    allowed_types: AllowedTypes | None = None
    active: bool | None = None


class KindPublic(ResponseModel):
    key: str
    title: str
    allowed_types: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int
