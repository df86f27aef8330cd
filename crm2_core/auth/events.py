"""The events the auth plugin emits.

Credentials events: every process drops its cached credentials on them. Sign-in
events: what a person or a rule may act on (notifications ships rules for them);
they name the user by id and the client's address, never an e-mail, a password
or a token.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

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


class LoginFailed(EventData, type="auth.login.failed", version=1):
    """A sign-in on an existing account was refused: a wrong password, or a disabled account.

    ``failures`` counts this address's failures in a row on the account (the
    progressive delay's streak); ``retry_after_seconds`` is how long that address
    now waits before its next try. Unknown e-mails emit nothing (no one to tell).
    """

    user_id: uuid.UUID
    address: str
    reason: Literal["wrong_password", "account_disabled"]
    failures: int
    retry_after_seconds: int


class LoginDelayed(EventData, type="auth.login.delayed", version=1):
    """An address used up its free failures on an account: from now on each wrong password
    from it doubles its wait. Once per streak; crm2 never locks the account itself."""

    user_id: uuid.UUID
    address: str
    failures: int
    retry_after_seconds: int


class LoginConfirmationRequested(EventData, type="auth.login.confirmation_requested", version=1):
    """The password matched and a plugin (``crm2_confirm_login``) asked the user to confirm."""

    user_id: uuid.UUID
    challenge_id: uuid.UUID
    address: str
    expires_at: datetime


class LoginConfirmationDenied(EventData, type="auth.login.confirmation_denied", version=1):
    """The user refused a sign-in whose password was right: someone else may know it."""

    user_id: uuid.UUID
    challenge_id: uuid.UUID


EVENT_TYPES: list[type[EventData]] = [
    UserCredentialsChanged,
    RoleChanged,
    ApiKeysRevoked,
    LoginFailed,
    LoginDelayed,
    LoginConfirmationRequested,
    LoginConfirmationDenied,
]
