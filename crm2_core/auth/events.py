"""The events the auth plugin emits: every process drops its cached credentials on them."""

from __future__ import annotations

import uuid

from crm2_core.events.types import EventData


class UserCredentialsChanged(EventData, type="auth.user.credentials_changed", version=1):
    """A user's roles, active flag or password changed, or the user was deleted.

    Their access tokens stop working at once; ``credentials_version`` is ``None``
    for a deleted user.
    """

    user_id: uuid.UUID
    credentials_version: int | None
    reason: str


class RoleChanged(EventData, type="auth.role.changed", version=1):
    """A role's permission set changed, or the role was deleted."""

    name: str
    deleted: bool = False


class ApiKeysRevoked(EventData, type="auth.api_key.revoked", version=1):
    """API keys were revoked: by hand, with the key that made them, or because their
    creator no longer may grant them."""

    key_ids: list[uuid.UUID]
    reason: str


EVENT_TYPES: list[type[EventData]] = [UserCredentialsChanged, RoleChanged, ApiKeysRevoked]
