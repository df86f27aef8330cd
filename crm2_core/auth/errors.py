"""Auth errors, each with its HTTP status."""

from __future__ import annotations

from crm2_core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
    whole_seconds,
)


class InvalidCredentials(Unauthorized):
    slug, title = "invalid-credentials", "Wrong e-mail or password"


class LoginNotConfirmed(Unauthorized):
    slug, title = "login-not-confirmed", "The sign-in was refused, has expired or was used"


class LoginConfirmationUnavailable(ServiceUnavailable):
    slug, title = "login-confirmation-unavailable", "The sign-in could not be sent for confirmation"


class LoginThrottleUnavailable(ServiceUnavailable):
    """The login throttle's Redis did not answer: the attempt cannot be counted, so it is
    refused (fail closed) rather than let through past the per-address limit."""

    slug, title = "login-throttle-unavailable", "Sign-ins cannot be counted right now"

    def __init__(self, seconds: float) -> None:
        wait = whole_seconds(seconds)
        super().__init__(
            f"the login throttle (Redis) is not answering, so sign-ins are refused for "
            f"now; try again in {wait} seconds",
            retry_after=wait,
        )
        self.seconds = seconds


class InvalidRefreshToken(Unauthorized):
    slug, title = "invalid-refresh-token", "Refresh token invalid, expired or revoked"


class RefreshTokenReused(InvalidRefreshToken):
    slug, title = "refresh-token-reused", "Refresh token already used: the session is revoked"


class CredentialsChanged(InvalidRefreshToken):
    slug, title = (
        "credentials-changed",
        "The session ended: the account's password, roles or active flag changed",
    )


class UserNotFound(NotFound):
    slug, title = "user-not-found", "User not found"


class RoleNotFound(NotFound):
    slug, title = "role-not-found", "Role not found"


class ApiKeyNotFound(NotFound):
    slug, title = "api-key-not-found", "API key not found"


class EmailTaken(Conflict):
    slug, title = "email-taken", "A user with this e-mail exists"


class EmailLookAlike(Conflict):
    slug, title = "email-look-alike", "A user's e-mail reads the same as this one"


class RoleExists(Conflict):
    slug, title = "role-exists", "A role with this name exists"


class RoleInUse(Conflict):
    slug, title = "role-in-use", "The role is still assigned"


class BuiltinRole(Conflict):
    slug, title = "builtin-role", "Built-in roles cannot be deleted"


class AdminHoldsEverything(Conflict):
    slug, title = "admin-holds-everything", "The admin role always holds '*'"


class UnknownRole(Unprocessable):
    slug, title = "unknown-role", "Unknown role"


class UnknownUser(Unprocessable):
    slug, title = "unknown-user", "Not an active user"


class UnknownPermission(Unprocessable):
    slug, title = "unknown-permission", "Unknown permission"


class LastAdmin(Conflict):
    slug, title = "last-admin", "The last active admin cannot be removed"


class PrivilegeEscalation(Forbidden):
    slug, title = "privilege-escalation", "You cannot grant or touch more than you hold"


class UserOwnsRecords(Conflict):
    slug, title = "user-owns-records", "The user still owns records"


class CurrentPasswordRequired(Unprocessable):
    slug, title = "current-password-required", "This change needs your current password"


class WrongCurrentPassword(Forbidden):
    slug, title = "wrong-current-password", "The current password is wrong"


class ExpiryPassed(Unprocessable):
    slug, title = "expiry-passed", "The expiry is past or too near"
