"""Model families: an update body and a public body derived from the fields written once."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import pytest
from pydantic import Field, ValidationError, field_validator
from sqlmodel import SQLModel

from crm2_core.api import RequestModel, ResponseModel, UpdateModel, utcnow
from crm2_core.schemas import NOT_BLANK


class Widget(SQLModel):  # stands for a table: the columns
    id: uuid.UUID
    name: str = Field(max_length=100)
    size: int
    secret: str = ""
    created_at: datetime


class WidgetCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    size: int = Field(ge=1, le=10)
    note: str | None = Field(None, max_length=20)
    owner_id: uuid.UUID | None = None


class WidgetUpdate(
    UpdateModel, partial_of=WidgetCreate, clearable=("note",), exclude=("owner_id",)
):
    archived: bool | None = None

    @field_validator("name", mode="after")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return value.title() if value else value


class WidgetPublic(ResponseModel, fields_of=Widget, exclude=("secret",)):
    size: str  # a body field replaces the copied column


def _update(body: dict[str, Any]) -> dict[str, Any]:
    return WidgetUpdate.model_validate(body).model_dump(exclude_unset=True)


def test_update_takes_every_create_field_optional_with_its_limits() -> None:
    assert list(WidgetUpdate.model_fields) == ["name", "size", "note", "archived"]
    assert _update({}) == {}
    assert _update({"name": "big one", "archived": True}) == {"name": "Big One", "archived": True}
    for refused in ({"name": ""}, {"size": 11}, {"note": "x" * 21}, {"owner_id": None}):
        with pytest.raises(ValidationError):
            WidgetUpdate.model_validate(refused)


def test_update_refuses_null_unless_the_field_is_clearable() -> None:
    assert _update({"note": None}) == {"note": None}
    with pytest.raises(ValidationError, match="must not be null"):
        WidgetUpdate.model_validate({"size": None})
    schema = WidgetUpdate.model_json_schema()["properties"]
    assert schema["size"] == {"title": "Size", "type": "integer", "minimum": 1, "maximum": 10}
    assert {"type": "null"} in schema["note"]["anyOf"]


def test_public_takes_the_table_columns() -> None:
    row = Widget(id=uuid.uuid4(), name="w", size=3, secret="s", created_at=utcnow())
    public = WidgetPublic.model_validate({**row.model_dump(), "size": "3 cm"})
    assert list(WidgetPublic.model_fields) == ["id", "name", "created_at", "size"]
    assert public.model_dump()["size"] == "3 cm" and "secret" not in public.model_dump()
    assert set(WidgetPublic.model_json_schema()["required"]) == {"id", "name", "created_at", "size"}


class Labels(RequestModel):
    title: str = Field(min_length=1, max_length=50)
    tags: list[str] = Field(default_factory=list)  # items without a minimum: blank is a value
    note: str | None = Field(None, min_length=1)
    code: str = Field("ab", min_length=2, pattern=r"^[a-z]+$")


def test_a_required_string_says_in_the_document_that_blank_is_refused() -> None:
    """The server strips whitespace before the length check, so a schema-valid " " would get
    a 422: the document carries a pattern that needs one non-blank character."""
    properties = Labels.model_json_schema()["properties"]
    assert properties["title"]["pattern"] == NOT_BLANK
    assert {"type": "string", "minLength": 1, "pattern": NOT_BLANK} in properties["note"]["anyOf"]
    assert "pattern" not in properties["tags"]["items"]
    assert properties["code"]["pattern"] == r"^[a-z]+$"  # a pattern of its own is kept
    with pytest.raises(ValidationError, match="at least 1 character"):
        Labels(title=" \t ")


def test_the_blank_pattern_is_exactly_what_the_server_strips() -> None:
    """Found by schemathesis: U+0085 matches ECMA-262's \\S but pydantic strips it."""
    # from 1: NUL is refused as unstorable, pattern or not; every White_Space character is below
    for point in [*range(1, 0x3100), 0xFEFF]:
        char = chr(point)
        try:
            Labels(title=char)
            kept = True
        except ValidationError:
            kept = False
        assert kept == bool(re.search(NOT_BLANK, char)), hex(point)
