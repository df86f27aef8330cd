"""schemathesis hooks for tests/openapi (loaded through ``SCHEMATHESIS_HOOKS``).

``positive_data_acceptance`` takes 422 for schema-valid data (a business rule
the schema cannot express, such as "value_min needs currency" or "end_date after
start_date"). This check keeps the part of it that matters: a request the schema
calls valid must never fail the server's own validation of a *single field*
(``validation-error`` with a field in ``loc``), which would mean the document
is looser than the server about that field.
"""

from __future__ import annotations

from typing import Any

import schemathesis

# ``format: email`` cannot say that email-validator refuses special-use domains
# (example.invalid, *.test, localhost): the one per-field rule the document cannot express.
_SPECIAL_USE_DOMAIN = "special-use or reserved name"
# Nor can it say that a password's characters must show (Unicode category C does not
# count), nor that a date-time must fall on or after year 1 in UTC (or within tasks' due
# range: JSON Schema has no bounds for a date-time), nor which names the IANA time zone
# database holds (an enum of ~600 names that changes with tzdata). Nor can it relate two
# parameters: a range given backwards (``expected_close_from`` later than
# ``expected_close_to``, ``value_min`` more than ``value_max``) is refused naming both,
# each a valid value on its own (crm2_core.kit.query's range check).
_UNEXPRESSIBLE = (
    _SPECIAL_USE_DOMAIN,
    "visible characters",
    "the first instant stored",
    "must be between 1900-01-01 and 2999-12-31",
    "unknown time zone",
    "is later than",
    "is more than",
)


@schemathesis.check
def schema_valid_is_not_a_validation_error(ctx: Any, response: Any, case: Any) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    try:
        body = response.json()
    except Exception:
        return None
    if not isinstance(body, dict) or body.get("type") != "urn:crm2:problem:validation-error":
        return None
    # In the stateful phase a path value is taken from an earlier response (an inferred
    # link, e.g. a "/feed/{id}" template in the console's view list), not generated from
    # this operation's schema: refusing it is not the document disagreeing with the server.
    linked_path = str(getattr(meta.phase, "name", "")) == "stateful"
    fields = [
        e
        for e in body.get("errors", [])
        if len(e.get("loc", [])) >= 2
        and not any(rule in e.get("msg", "") for rule in _UNEXPRESSIBLE)
        and not (linked_path and e["loc"][0] == "path")
    ]
    if fields:
        raise AssertionError(
            "the document allows this request, the server refused a field as invalid: "
            + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e.get('msg')}" for e in fields)
        )
    return None
