"""Activity request and response bodies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from crm2_core.api import AwareIsoDateTime, Filter, RequestModel, ResponseModel, UpdateModel
from crm2_deals.models import Activity

# "system" entries exist too, but only services write them.
UserActivityKind = Literal["note", "call", "meeting", "email"]
ActivityKind = Literal["note", "call", "meeting", "email", "system"]


class ActivityCreate(RequestModel):
    """A note, call, meeting or e-mail on a client, optionally on one of its deals or policies.

    ``client_id`` may be left out when a deal or policy is given: it is theirs.
    """

    kind: UserActivityKind
    client_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    policy_id: uuid.UUID | None = None
    subject: str = Field("", max_length=300)
    body: str = Field("", max_length=20_000)
    occurred_at: AwareDatetime | None = Field(None, description="when it happened; default now")

    @model_validator(mode="after")
    def _linked(self) -> ActivityCreate:
        if self.client_id is None and self.deal_id is None and self.policy_id is None:
            raise ValueError("an activity needs a client_id, deal_id or policy_id")
        return self


class ActivityUpdate(
    UpdateModel, partial_of=ActivityCreate, exclude=("client_id", "deal_id", "policy_id")
):
    """The kind, subject, body or time of a note, call, meeting or e-mail."""


class ActivityPublic(ResponseModel, fields_of=Activity):
    kind: ActivityKind


@dataclass(frozen=True)
class ActivityFilters:
    """The list's query parameters (``query_filters``); all optional, combined with AND."""

    client: Annotated[uuid.UUID | None, Filter("client id")] = None
    deal: Annotated[uuid.UUID | None, Filter("deal id")] = None
    policy: Annotated[uuid.UUID | None, Filter("policy id")] = None
    owner: Annotated[uuid.UUID | None, Filter("owner's user id")] = None
    kind: Annotated[tuple[ActivityKind, ...], Filter("repeatable")] = ()
    updated_since: Annotated[AwareIsoDateTime | None, Filter("changed at or after")] = None
