"""Request and response bodies for documents and versions: limits written once."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from crm2_core.api import (
    HIDDEN_BMP,
    Clearable,
    EntityLink,
    Int64,
    RequestModel,
    ResponseModel,
    UpdateModel,
    refuse_hidden,
)

TITLE_MAX = 300


def normal_text(value: str) -> str:
    """Text as it is stored and searched: NFC and trimmed (a decomposed ``é`` and a
    composed one are the same title, and the same search)."""
    return unicodedata.normalize("NFC", value).strip()


KindKey = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]


def _clean_tag(value: str) -> str:
    """NFC and trimmed; a tag with a hidden or control character is refused."""
    tag = refuse_hidden(normal_text(value), "a tag")
    if not tag:
        raise ValueError("a tag may not be empty")
    return tag


def visible_text(max_length: int, what: str) -> Callable[[str], str]:
    """The check of a one-line text shown to people (a title): NFC and trimmed, not blank,
    at most ``max_length`` characters, no hidden or control character (as tags)."""

    def clean(value: str) -> str:
        text = refuse_hidden(normal_text(value), what)
        if not text:
            raise ValueError(f"{what} may not be blank")
        if len(text) > max_length:  # NFC can lengthen a few scripts' text
            raise ValueError(f"{what} may hold at most {max_length} characters")
        return text

    return clean


_H = HIDDEN_BMP
_Z = "\\u200c\\u200d"
# The server's own check (pattern, then _clean_tag) gives the clearer message; the
# document states the same rule: no hidden character, a joiner only before a visible one.
_TAG_PATTERN_DOC = rf"^[^\s,;{_H}{_Z}](?:[^,;{_H}{_Z}]|[{_Z}](?=[^,;{_H}]*[^\s,;{_H}{_Z}]))*$"
# A title may hold spaces (trimmed at both ends, where a control that is also a space,
# such as a tab, goes with them); a joiner only with a visible character after it.
_V = rf"[^\s{_H}{_Z}]"
_TEXT_PATTERN_DOC = rf"^\s*{_V}(?:[^{_H}{_Z}]|[{_Z}](?=.*{_V}))*?\s*$"

Tag = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[^\s,;][^,;]*$",
        json_schema_extra={"pattern": _TAG_PATTERN_DOC},
    ),
    AfterValidator(_clean_tag),
]
Tags = Annotated[list[Tag], Field(max_length=20, json_schema_extra={"uniqueItems": True})]
# what the document tells a client a title may be (the server checks with visible_text)
TEXT_DOC = {"pattern": _TEXT_PATTERN_DOC}
Title = Annotated[
    str,
    Field(min_length=1, max_length=TITLE_MAX, json_schema_extra=TEXT_DOC),
    AfterValidator(visible_text(TITLE_MAX, "a title")),
]


def search_key(text: str) -> str:
    """Text as ``q`` compares it: NFC, trimmed and case-folded as tags are (``straße`` and
    ``STRASSE`` are one search), the same in Python on both databases.

    Python's ``casefold``, not the core's ``fold_text`` (which keeps ``ß``), on purpose:
    the core avoids ``casefold`` because SQL folding it in SQLite only made the two
    databases disagree. Here both the stored text and ``q`` are folded in Python before
    the query, and ``contains_text`` then applies ``fold_text``/``folded()`` to both
    sides alike, so SQLite and PostgreSQL give the same answer. ``q`` must agree with
    tag identity and the tag filter (``tag_key``: ``Straße`` and ``STRASSE`` are one tag),
    which the user sees in the same list; switching to ``fold_text`` would have to change
    tag uniqueness too."""
    return normal_text(text).casefold()


def tag_key(tag: str) -> str:
    """What makes two tags one: case-folded (they are NFC already). Uniqueness and the
    tag filter both compare this."""
    return tag.casefold()


def _unique(values: list[str] | None) -> list[str] | None:
    """Tags that differ only by case (or normalisation, already NFC) are one tag."""
    if values is not None and len({tag_key(v) for v in values}) != len(values):
        raise ValueError("tags must be unique (ignoring case)")
    return values


class DocumentCreate(RequestModel):
    title: Title
    kind: KindKey = "other"
    tags: Tags = []
    link: EntityLink | None = Field(None, description="the record the document belongs to")

    _tags = field_validator("tags")(_unique)


class DocumentUpdate(UpdateModel):
    """Only the fields sent change; ``link: null`` unlinks."""

    title: Title | None = None
    kind: KindKey | None = None
    tags: Tags | None = None
    link: Annotated[EntityLink | None, Clearable] = None

    _tags = field_validator("tags")(_unique)


class LinkPublic(ResponseModel):
    kind: str
    id: str


class VersionPublic(ResponseModel):
    id: uuid.UUID
    number: int
    size: Int64
    sha256: str
    content_type: str
    filename: str
    backend: str
    state: str = Field(description="stored | transferring | failed")
    target_backend: str | None
    uploaded_by: uuid.UUID | None
    uploaded_at: datetime


class DocumentPublic(ResponseModel):
    id: uuid.UUID
    title: str
    kind: str
    tags: list[str]
    link: LinkPublic | None
    owner_id: uuid.UUID | None
    creator_id: uuid.UUID | None
    current_version: int = Field(description="number of the newest version; 0 = no file yet")
    current: VersionPublic | None = Field(None, description="the newest version")
    deleted_at: datetime | None
    purge_after: datetime | None = Field(None, description="when a deleted document goes")
    created_at: datetime
    updated_at: datetime
    version: int


class SignedUrlRequest(RequestModel):
    version: int | None = Field(None, ge=1, le=1_000_000, description="default: the newest")
    expires_in: int = Field(300, ge=10, le=86_400, description="seconds the URL stays valid")


class SignedUrl(ResponseModel):
    url: str = Field(description="GET it without credentials until expires_at")
    expires_at: datetime


class TransferRequest(RequestModel):
    backend: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
