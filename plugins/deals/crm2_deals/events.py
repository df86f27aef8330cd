"""The events the deals plugin emits: its public, versioned contract.

Subjects: a client's, deal's or policy's id. Money travels as a decimal string.
"""

from __future__ import annotations

import uuid
from datetime import date

from crm2_core.api import EventData


class ClientCreated(EventData, type="deals.client.created", version=1):
    """A client was created."""

    name: str
    kind: str
    owner_id: uuid.UUID


class ClientUpdated(EventData, type="deals.client.updated", version=1):
    """A client's fields changed; ``changed`` names them."""

    changed: list[str]
    owner_id: uuid.UUID
    # added in 0.2 (optional: events recorded before it have none): the owner a hand-over
    # took it from, so the stream tells them too
    previous_owner_id: uuid.UUID | None = None


class ClientArchived(EventData, type="deals.client.archived", version=1):
    """A client was archived."""

    owner_id: uuid.UUID


class DealCreated(EventData, type="deals.deal.created", version=1):
    """A deal was created."""

    title: str
    client_id: uuid.UUID
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    value: str
    currency: str
    owner_id: uuid.UUID


class DealUpdated(EventData, type="deals.deal.updated", version=1):
    """A deal's fields changed; ``changed`` names them."""

    changed: list[str]
    owner_id: uuid.UUID
    # added in 0.2 (optional: events recorded before it have none): the owner a hand-over
    # took it from, so the stream tells them too
    previous_owner_id: uuid.UUID | None = None


class DealStageChanged(EventData, type="deals.deal.stage_changed", version=1):
    """A deal moved to another stage of its pipeline."""

    from_stage_id: uuid.UUID
    to_stage_id: uuid.UUID
    status: str
    owner_id: uuid.UUID
    # added in 0.2 (optional: events recorded before it have none): the deal's version
    # after the move, its ETag ``"v<version>"``, so a board moves the card and keeps
    # its next If-Match without reading the deal again
    version: int | None = None


class DealWon(EventData, type="deals.deal.won", version=1):
    """A deal reached a won stage."""

    value: str
    currency: str
    client_id: uuid.UUID
    owner_id: uuid.UUID


class DealLost(EventData, type="deals.deal.lost", version=1):
    """A deal reached a lost stage."""

    lost_reason: str
    client_id: uuid.UUID
    owner_id: uuid.UUID


class PolicyCreated(EventData, type="deals.policy.created", version=1):
    """A policy was recorded."""

    number: str
    insurer: str
    product: str = ""  # added in 0.2 (optional: events recorded before it have none)
    client_id: uuid.UUID
    premium: str
    currency: str
    payment_frequency: str
    start_date: date
    end_date: date
    renewal_of: uuid.UUID | None
    owner_id: uuid.UUID


class PolicyUpdated(EventData, type="deals.policy.updated", version=1):
    """A policy's fields changed (a PATCH); ``changed`` names them (``premium`` for the
    amount), ``previous_owner_id`` the owner a hand-over took it from."""

    changed: list[str]
    owner_id: uuid.UUID
    previous_owner_id: uuid.UUID | None = None


class PolicyActivated(EventData, type="deals.policy.activated", version=1):
    """A policy became active (issued)."""

    client_id: uuid.UUID
    premium: str
    currency: str
    payment_frequency: str
    start_date: date
    end_date: date
    owner_id: uuid.UUID


class PolicyCancelled(EventData, type="deals.policy.cancelled", version=1):
    """A policy was cancelled."""

    client_id: uuid.UUID
    owner_id: uuid.UUID


class PolicyExpired(EventData, type="deals.policy.expired", version=1):
    """A policy passed its end date."""

    client_id: uuid.UUID
    end_date: date
    owner_id: uuid.UUID


class PolicyRenewalDue(EventData, type="deals.policy.renewal_due", version=1):
    """A policy ends within the renewal notice period."""

    client_id: uuid.UUID
    end_date: date
    days_left: int
    owner_id: uuid.UUID


EVENT_TYPES: list[type[EventData]] = [
    ClientCreated,
    ClientUpdated,
    ClientArchived,
    DealCreated,
    DealUpdated,
    DealStageChanged,
    DealWon,
    DealLost,
    PolicyCreated,
    PolicyUpdated,
    PolicyActivated,
    PolicyCancelled,
    PolicyExpired,
    PolicyRenewalDue,
]
