"""Rule conditions on the event envelope: ``{"field": "data.value", "op": "gt", "value": 1000}``.

All conditions of a rule must hold. Pure functions over the envelope's JSON form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists")
FIELD_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.([a-z][a-z0-9_]*|[0-9]+)){0,5}$")
MISSING = object()


class ConditionInvalid(ValueError):
    pass


ORDERED = ("gt", "gte", "lt", "lte")


def check(raw: Mapping[str, Any], number: int = 1) -> None:
    """Refuse a condition that could never hold; ``number`` (1-based) names it."""
    field, op = raw.get("field"), raw.get("op", "eq")
    if not isinstance(field, str) or not FIELD_PATTERN.match(field):
        raise ConditionInvalid(f"condition field {field!r} is not a path such as data.status")
    if op not in OPERATORS:
        raise ConditionInvalid(f"condition op {op!r} is not one of {', '.join(OPERATORS)}")
    value = raw.get("value")
    if op in ("in", "not_in") and not isinstance(value, list):
        raise ConditionInvalid(f"condition op {op!r} needs a list value")
    # ``holds`` orders numbers, or texts; anything else (an object, a list, true, null)
    # would be saved and never match: refused here instead
    if op in ORDERED and (isinstance(value, bool) or not isinstance(value, int | float | str)):
        kind = {dict: "an object", list: "a list", bool: "true/false"}.get(type(value), "null")
        raise ConditionInvalid(
            f"condition {number} ({field} {op}) needs a number or a text value, not {kind}"
        )


def lookup(envelope: Mapping[str, Any], path: str) -> Any:
    current: Any = envelope
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    # "NaN" (text a user typed) parses, but ordering it raises InvalidOperation, which
    # would fail the whole event's rules: no number, as "abc" is none
    return None if number.is_nan() else number


def _same(a: Any, b: Any) -> bool:
    return bool(a == b or str(a) == str(b))


def holds(raw: Mapping[str, Any], envelope: Mapping[str, Any]) -> bool:
    actual = lookup(envelope, str(raw.get("field")))
    op, expected = raw.get("op", "eq"), raw.get("value")
    if op == "exists":
        present = actual is not MISSING and actual is not None
        return present if expected in (None, True) else not present
    if actual is MISSING:
        return False
    if op == "eq":
        return _same(actual, expected)
    if op == "ne":
        return not _same(actual, expected)
    if op in ("in", "not_in"):
        inside = any(_same(actual, v) for v in expected or [])
        return inside if op == "in" else not inside
    if op == "contains":
        if isinstance(actual, list):
            return expected in actual
        return isinstance(actual, str) and str(expected).lower() in actual.lower()
    left, right = _number(actual), _number(expected)
    if left is None or right is None:
        if not (isinstance(actual, str) and isinstance(expected, str)):
            return False
        a: Any = actual
        b: Any = expected
    else:
        a, b = left, right
    return bool({"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[str(op)])


def matches(conditions: Sequence[Mapping[str, Any]], envelope: Mapping[str, Any]) -> bool:
    try:
        return all(holds(c, envelope) for c in conditions)
    except (TypeError, KeyError):
        return False
