"""RFC 9457 problem+json for every error, rendered in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from crm2_core.errors import (
    PROBLEM_TYPE_BASE,
    BadRequest,
    Crm2Error,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Permission denied"),
    404: (NotFound.slug, NotFound.title),
    405: (MethodNotAllowed.slug, MethodNotAllowed.title),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("unprocessable", "The request cannot be processed"),
    429: ("too-many-requests", "Too many requests"),
}


WHY = {
    400: "Bad request: unknown query parameter, malformed or non-UTF-8 JSON, bad cursor or header",
    401: "Authentication required or failed",
    403: "Permission denied",
    404: "Not found",
    409: "Conflict with the current state",
    412: "If-Match names an old version",
    413: "Request body too large",
    415: "Unsupported media type, or JSON in a charset other than UTF-8",
    422: "The request is invalid (see errors) or cannot be processed",
    428: "If-Match required",
    429: "Too many requests (Retry-After)",
    503: "A dependency is unavailable; retry later",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's own problem statuses: ``problem_responses(401, 409)``.

    The core documents the statuses every route can give (``http/openapi.py``);
    a route lists only those its own rules add (401 from a login, say).
    """
    return {status: problem_response(status) for status in statuses}


NEVER_ANSWERS_KEY = "x-crm2-never-answers"


def never_answers(*statuses: int) -> dict[str, Any]:
    """``openapi_extra=`` of a route that never gives some of the statuses the core
    declares for every route of its kind (``http/openapi.py``): ``never_answers(404, 409)``
    for ``POST /auth/logout``, which answers 204 whatever the token. The key is read
    when the document is written and is not part of it."""
    return {NEVER_ANSWERS_KEY: sorted(statuses)}


def problem_response(status: int) -> dict[str, Any]:
    return {
        "description": WHY.get(status, "Problem"),
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
    }


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        _record_answer(request, status)
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    body.update(jsonable_encoder(extensions))
    return ProblemResponse(body, status_code=status, headers=headers)


ANSWERED_KEY = "crm2_answered_problems"


def _record_answer(request: Request, status: int) -> None:
    """Note (method, route, status) where the test kit asked for it: it checks each one
    against the OpenAPI document (``Crm2TestApp.undeclared_problems``)."""
    answered = getattr(request.app.state, ANSWERED_KEY, None)
    if answered is None or (status >= 500 and status != 503):  # a 500 is a bug, not a contract
        return
    route = request.scope.get("route")
    path = getattr(route, "path_format", None)
    if path is not None and getattr(route, "include_in_schema", False):
        answered.add((request.method, path, status))


async def _crm2_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Crm2Error)
    if exc.status >= 500:
        log.exception("server error on %s %s", request.method, request.url.path, exc_info=exc)
    if isinstance(exc, PreconditionFailed) and "if-match" not in request.headers:
        # RFC 9110: 412 answers a precondition the client sent. A request without one that
        # lost a race (its version read, then bumped by another writer) is a plain conflict.
        return problem(
            409,
            "conflict",
            "Conflict",
            "a concurrent change to this resource got there first; nothing was changed: "
            "read it again and retry",
            request,
        )
    return problem(
        exc.status, exc.slug, exc.title, exc.detail, request, exc.headers, **exc.extensions
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route matches {request.method} {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    return problem(exc.status_code, slug, title, detail, request, headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method served on the path template that matched, not only the first route's.

    Starlette answers 405 from the first route whose path matched, so ``GET`` and
    ``PATCH`` declared as two routes would each claim to be the only one. The
    template is the first that matches, as routing tries them (``/clients/import``
    before ``/clients/{client_id}``).
    """
    path = request.url.path
    routes = getattr(request.app.state, "crm2_routes", ())
    template = next((r.path_format for r in routes if r.path_regex.match(path)), None)
    methods: set[str] = set()
    for route in routes:
        if route.path_format == template:
            methods |= set(route.methods or ())
    return sorted(methods)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


class MalformedJson(BadRequest):
    slug, title = "malformed-json", "The body is not valid JSON"


def _json_position(document: Any, pos: int) -> tuple[int, int]:
    """Line and column (1-based) of character ``pos`` in the body FastAPI failed to parse."""
    if isinstance(document, bytes):
        document = document.decode("utf-8", "replace")
    if not isinstance(document, str):
        return 1, pos + 1
    line = document.count("\n", 0, pos) + 1
    column = pos - (document.rfind("\n", 0, pos) + 1) + 1
    return line, column


def _malformed_json(request: Request, exc: RequestValidationError) -> Response | None:
    for err in exc.errors():
        if err.get("type") != "json_invalid":
            continue
        loc = list(err.get("loc", ()))
        pos = loc[-1] if loc and isinstance(loc[-1], int) else 0
        line, column = _json_position(exc.body, pos)
        reason = (err.get("ctx") or {}).get("error", "invalid JSON")
        return problem(
            400,
            MalformedJson.slug,
            MalformedJson.title,
            f"{reason} at line {line} column {column}",
            request,
            line=line,
            column=column,
        )
    return None


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    malformed = _malformed_json(request, exc)
    if malformed is not None:
        return malformed
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{_location(e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem(
        422, ValidationFailed.slug, ValidationFailed.title, summary, request, errors=errors
    )


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        "internal-error",
        "Internal server error",
        "the server failed; the request id identifies it in the logs",
        request,
    )


# PostgreSQL's "try again" errors: a serializable transaction's conflict, a deadlock.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


async def _database_error(request: Request, exc: Exception) -> Response:
    """A constraint or a serialization check the service did not foresee: two requests
    racing for one name, or for a row the other removes. The database kept its rules
    and the transaction is rolled back, so the client may read again and retry (409);
    any other database error is a server failure (500).
    """
    assert isinstance(exc, DBAPIError)
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if not isinstance(exc, IntegrityError) and sqlstate not in _RETRYABLE_SQLSTATES:
        raise exc  # on to the 500 handler, as any other failure
    log.warning(
        "the database refused %s %s (a concurrent change?): %s",
        request.method,
        request.url.path,
        str(exc.orig).splitlines()[0] if exc.orig is not None else exc,
        exc_info=exc,
    )
    return problem(
        409,
        "conflict",
        "Conflict",
        "a concurrent change to the same records got there first; nothing was changed: "
        "read them again and retry",
        request,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Crm2Error, _crm2_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unhandled)
