"""Request and response bodies for clients and contacts (the import report is the kit's)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from crm2_core.api import RequestModel, ResponseModel, UpdateModel
from crm2_deals.models import Client, Contact

ClientKind = Literal["person", "company"]
# Whitespace spelled out: Python's, Rust's (pydantic) and JavaScript's ``\s`` differ
# (\x1c-\x1f, \x85, \ufeff), and the document, the validator and this check must agree.
_SPACE = r"\t\n\x0b\x0c\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_PART = rf"[^@{_SPACE}]+"
_ADDRESS = rf"{_PART}@{_PART}\.{_PART}"
_EMAIL = re.compile(rf"^{_ADDRESS}$")
# What the document promises, so generated clients send what the server takes: an
# address (or "", which is skipped), and list items within their column's width.
EmailItem = Annotated[str, Field(max_length=320, pattern=rf"^(|{_ADDRESS})$")]
ListItem = Annotated[str, Field(max_length=64)]


def clean_emails(values: list[str]) -> list[str]:
    """Lower-cased, stripped, de-duplicated (order kept); a malformed address is an error."""
    out: list[str] = []
    for raw in values:
        email = raw.strip().lower()
        if not email:
            continue
        if len(email) > 320 or not _EMAIL.match(email):
            raise ValueError(f"{raw!r} is not an e-mail address")
        if email not in out:
            out.append(email)
    return out


def clean_list(values: list[str], max_length: int = 100) -> list[str]:
    """Stripped, empty entries dropped, de-duplicated (order kept)."""
    out: list[str] = []
    for raw in values:
        value = raw.strip()
        if len(value) > max_length:
            raise ValueError(f"{value[:20]!r}… is longer than {max_length} characters")
        if value and value not in out:
            out.append(value)
    return out


def clean_tax_id(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


class _ClientFields(RequestModel):
    @field_validator("emails", mode="after", check_fields=False)
    @classmethod
    def _emails(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else clean_emails(value)

    @field_validator("phones", mode="after", check_fields=False)
    @classmethod
    def _phones(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else clean_list(value, 64)

    @field_validator("tags", mode="after", check_fields=False)
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else clean_list(value, 64)

    @field_validator("tax_id", mode="after", check_fields=False)
    @classmethod
    def _tax_id(cls, value: str | None) -> str | None:
        return clean_tax_id(value)


class ClientCreate(_ClientFields):
    kind: ClientKind
    name: str = Field(min_length=1, max_length=300)
    emails: list[EmailItem] = Field(default_factory=list, max_length=20)
    phones: list[ListItem] = Field(default_factory=list, max_length=20)
    tax_id: str | None = Field(default=None, max_length=64)
    address: str = Field(default="", max_length=1000)
    tags: list[ListItem] = Field(default_factory=list, max_length=50)
    owner_id: uuid.UUID | None = Field(default=None, description="default: the caller")


class ClientCsvRow(ClientCreate):
    """A CSV import's row, with ``ClientCreate``'s rules but one: the kit's ``read_csv``
    has refused any cell no column can store, so each field is not searched again
    (a third of the row's validation, 50,000 times for a large file)."""

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        return value


class ClientUpdate(_ClientFields, UpdateModel, partial_of=ClientCreate, clearable=("tax_id",)):
    """Only the fields sent change; ``{"archived": true}`` archives the client."""

    model_config = UpdateModel.model_config

    archived: bool | None = None


class ClientPublic(ResponseModel, fields_of=Client, exclude=("search_text",)):
    """A client as the API shows it: its columns but the search text."""


class ContactCreate(RequestModel):
    name: str = Field(min_length=1, max_length=300)
    position: str = Field(default="", max_length=200)
    email: EmailItem | None = None
    phone: str | None = Field(default=None, max_length=64)

    @field_validator("email", mode="after")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        cleaned = clean_emails([value]) if value else []
        return cleaned[0] if cleaned else None


class ContactUpdate(UpdateModel, partial_of=ContactCreate, clearable=("email", "phone")):
    @field_validator("email", mode="after")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return ContactCreate._email(value)


class ContactPublic(ResponseModel, fields_of=Contact):
    """A contact person of a company client."""
