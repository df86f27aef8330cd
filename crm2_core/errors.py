"""Error classes that carry their HTTP status; rendered once as RFC 9457 problem+json.

Services raise these (never ``HTTPException``) so that workers and the CLI can
call them too. A plugin subclasses them: ``class DealClosed(Conflict)``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

PROBLEM_TYPE_BASE = "urn:crm2:problem:"


class Crm2Error(Exception):
    """Base of every error crm2 turns into a problem response."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_BASE + self.slug


class BadRequest(Crm2Error):
    status, slug, title = 400, "bad-request", "Bad request"


class InvalidCursor(BadRequest):
    slug, title = "invalid-cursor", "Invalid pagination cursor"


class Unauthorized(Crm2Error):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extensions)


class Forbidden(Crm2Error):
    status, slug, title = 403, "forbidden", "Permission denied"


class NotFound(Crm2Error):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(Crm2Error):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(Crm2Error):
    status, slug, title = 409, "conflict", "Conflict"


class IdempotencyInFlight(Conflict):
    slug, title = "idempotency-in-flight", "A request with this Idempotency-Key is still running"


class IdempotentResponseNotKept(Conflict):
    slug, title = (
        "idempotent-response-not-kept",
        "The request with this Idempotency-Key was carried out; its response was not kept",
    )


class PreconditionFailed(Crm2Error):
    status, slug, title = 412, "precondition-failed", "The resource has changed (stale If-Match)"


class PayloadTooLarge(Crm2Error):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(Crm2Error):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class UnsupportedCharset(UnsupportedMediaType):
    slug, title = "unsupported-charset", "JSON is read as UTF-8 only"


class Unprocessable(Crm2Error):
    status, slug, title = 422, "unprocessable", "The request cannot be processed"


class ValidationFailed(Unprocessable):
    slug, title = "validation-error", "The request is invalid"


class NotUtf8(BadRequest):
    slug, title = "not-utf8", "The body is not UTF-8"


class JsonTooDeep(BadRequest):
    slug, title = "json-too-deep", "The JSON body nests too deeply"


class NonFiniteNumber(BadRequest):
    slug, title = "non-finite-number", "The JSON body holds a number that is not finite"


class DuplicateJsonKey(Unprocessable):
    slug, title = "duplicate-json-key", "The JSON body names a key twice"


class IdempotencyKeyReused(Unprocessable):
    slug, title = "idempotency-key-reused", "Idempotency-Key reused with a different request"


class PreconditionRequired(Crm2Error):
    status, slug, title = 428, "precondition-required", "If-Match header required"


def whole_seconds(seconds: float) -> int:
    """A wait as ``Retry-After`` gives it: whole seconds, rounded up, at least 1 (a 0
    would ask the client to retry at once, into the same refusal)."""
    return max(1, math.ceil(seconds))


class TooManyRequests(Crm2Error):
    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: float, **extensions: Any) -> None:
        wait = whole_seconds(retry_after)
        super().__init__(detail, headers={"Retry-After": str(wait)}, **extensions)
        self.retry_after = wait


class ServiceUnavailable(Crm2Error):
    """A dependency is down. ``retry_after``, when known, is the seconds until a retry may
    succeed: sent as the ``Retry-After`` header and the body's ``retry_after``, both in
    whole seconds (``whole_seconds``)."""

    status, slug, title = 503, "service-unavailable", "Service unavailable"

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        self.retry_after = None if retry_after is None else whole_seconds(retry_after)
        if self.retry_after is not None:
            headers = {**(headers or {}), "Retry-After": str(self.retry_after)}
            extensions["retry_after"] = self.retry_after
        super().__init__(detail, headers=headers, **extensions)


class ConfigurationError(Exception):
    """A setting or plugin that stops start-up; the message names the fix."""
