"""Hello's tables (``hello_*``), in the shared ``SQLModel.metadata``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from crm2_core.api import UtcDateTime, new_id, utcnow


class Greeting(SQLModel, table=True):
    """One greeting; ``version`` is its ETag and rises on every update."""

    __tablename__ = "hello_greeting"
    # The tag lets `crm2 makemigrations hello` see this plugin's tables only.
    __table_args__ = {"info": {"plugin": "hello"}}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=100)
    message: str = Field(max_length=200)
    # A string foreign key into the core's table: never a relationship on core models.
    owner_id: uuid.UUID = Field(foreign_key="auth_user.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False, index=True)
    )
    version: int = 1


MODELS: list[type[SQLModel]] = [Greeting]
