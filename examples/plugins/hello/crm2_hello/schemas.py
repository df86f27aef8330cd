"""Hello's request and response bodies (never the table model itself).

A model family in the kit's style: a field's limits are written once, on the
create body (or the table); the update body and the public body are derived.
"""

from __future__ import annotations

import uuid

from pydantic import Field

from crm2_core.api import RequestModel, ResponseModel, UpdateModel
from crm2_hello.models import Greeting


class GreetingCreate(RequestModel):
    """``POST /api/v1/hello/greetings``; unknown fields are a 422."""

    name: str = Field(min_length=1, max_length=100)
    owner_id: uuid.UUID | None = Field(
        None, description="default: the caller; someone else needs hello:all_records"
    )


class GreetingUpdate(UpdateModel, partial_of=GreetingCreate, exclude=("name",)):
    """``PATCH /api/v1/hello/greetings/{id}`` with ``If-Match``: the message, the owner."""

    message: str | None = Field(None, min_length=1, max_length=200)


class GreetingPublic(ResponseModel, fields_of=Greeting):
    """Every column of ``hello_greeting``."""
