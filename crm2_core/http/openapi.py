"""The OpenAPI document tells the truth about what the core does to every route.

FastAPI documents what a route's signature says. The core adds to every route
things no signature shows, so they are written into the document here, once,
from what each route depends on:

- ``securitySchemes`` (``bearer``: an access token or API key) and each
  operation's ``security``, so ``/docs`` has its Authorize button;
- the ``If-Match`` header (required) where the route uses ``IfMatchDep``, and the
  optional ``Idempotency-Key`` on every authenticated POST;
- every problem+json answer the core or the route's dependencies can give, with
  its status (400 unknown query parameter or malformed JSON, 401/403, 404,
  409, 412/428, 413/415, 422, 429), in place of FastAPI's ``application/json``
  422;
- a route's own extra statuses come from its ``responses=`` (``problem_responses``
  builds them), and the generic ones it never gives from its ``openapi_extra=``
  (``never_answers``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.params import Form
from fastapi.routing import APIRoute

from crm2_core.http.etag import require_if_match
from crm2_core.http.problems import NEVER_ANSWERS_KEY, problem_response
from crm2_core.http.request_guard import authenticator_of

BEARER = "bearer"

_STR_OR_INT = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; extensions (errors, parameters, …) may follow.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:crm2:problem:<slug>; switch on it"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "the request path"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}


def _calls(dependant: Dependant) -> Iterable[Any]:
    yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


class _Facts:
    def __init__(self, route: APIRoute) -> None:
        calls = set(_calls(route.dependant))
        self.secured = authenticator_of(route.dependant) is not None
        self.if_match = require_if_match in calls
        self.body = route.body_field is not None
        self.json_body = self.body and not isinstance(route.body_field.field_info, Form)  # type: ignore[union-attr]


def _statuses(facts: _Facts, method: str, op: dict[str, Any]) -> set[int]:
    # 404: the record in the path, or one the body or a filter names, does not exist.
    statuses = {400, 404, 422, 429}
    if facts.secured or op.get("security"):
        statuses |= {401, 403}
    if method in {"POST", "PUT", "PATCH", "DELETE"}:
        statuses.add(409)
    if facts.if_match:
        statuses |= {412, 428}
    if any(
        p.get("in") == "header" and p.get("name", "").lower() == "if-match"
        for p in op.get("parameters", [])
    ):
        statuses.add(412)  # an optional If-Match is still checked when sent
    if facts.body:
        statuses |= {413, 415}
    return statuses - set(op.pop(NEVER_ANSWERS_KEY, ()))


def _add_header(op: dict[str, Any], parameter: dict[str, Any]) -> None:
    parameters = op.setdefault("parameters", [])
    name = parameter["name"].lower()
    if not any(p.get("in") == "header" and p.get("name", "").lower() == name for p in parameters):
        parameters.append(parameter)


def _decorate(op: dict[str, Any], facts: _Facts, method: str) -> None:
    if facts.secured and "security" not in op:
        op["security"] = [{BEARER: []}]
    if facts.if_match:
        _add_header(
            op,
            {
                "name": "If-Match",
                "in": "header",
                "required": True,
                "description": "the ETag of the version you read (GET returns it)",
                "schema": {"type": "string"},
            },
        )
    if method == "POST" and (facts.secured or op.get("security")):
        _add_header(
            op,
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "retry-safe create: the same key and body replay the first response",
                "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
            },
        )
    responses = op.setdefault("responses", {})
    for status in sorted(_statuses(facts, method, op)):
        existing = responses.get(str(status))
        if existing is None or "application/json" in existing.get("content", {}):
            responses[str(status)] = problem_response(status)


def decorate_openapi(document: dict[str, Any], routes: Iterable[APIRoute]) -> None:
    """Write the core's security, headers and problem responses into ``document``."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "an access token from POST /api/v1/auth/login, or an API key",
        },
        "streamToken": {
            "type": "apiKey",
            "in": "query",
            "name": "token",
            "description": "a stream token from POST /api/v1/streams/token (SSE only)",
        },
        **components.get("securitySchemes", {}),
    }
    paths = document.get("paths", {})
    for route in routes:
        if not route.include_in_schema:
            continue
        facts = _Facts(route)
        for method in route.methods or ():
            op = paths.get(route.path_format, {}).get(method.lower())
            if op is not None:
                _decorate(op, facts, method)
