"""Hello's request and response bodies (never the table model itself)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from crm2_core.api import RequestModel, ResponseModel, UpdateModel


class GreetingCreate(RequestModel):
    """``POST /api/v1/hello/greetings``; unknown fields are a 422."""

    name: str = Field(min_length=1, max_length=100)


class GreetingUpdate(UpdateModel):
    """``PATCH /api/v1/hello/greetings/{id}`` with ``If-Match``."""

    message: str = Field(min_length=1, max_length=200)


class GreetingPublic(ResponseModel):
    id: uuid.UUID
    name: str
    message: str
    owner_id: uuid.UUID
    created_at: datetime
    version: int
