"""Automation rules as data: conditions on an event envelope and templated task fields.

Pure functions over the envelope's JSON form (``id``, ``type``, ``subject``,
``actor``, ``data``, ``occurred_at``). Nothing here knows another plugin: a
rule names fields by path (``data.client_name``) and the event decides what
is there.

- conditions: ``[{"field": "data.value", "op": "gt", "value": "1000"}]``, all must hold;
- templates: ``"Call {data.client_name}"``; ``{subject}``, ``{actor.id}``, …;
- ``due_in``: ``"1 business day"``, ``"4 business hours"``, ``"2 days"``, ``"30 minutes"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists")
ORDERED = ("gt", "gte", "lt", "lte")
FIELD_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.([a-z][a-z0-9_]*|[0-9]+)){0,5}$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
DUE_IN = re.compile(
    r"^\s*(?P<n>\d{1,4})\s+(?P<business>business\s+)?(?P<unit>minute|hour|day|week)s?\s*$"
)
MISSING = object()


class RuleError(ValueError):
    """A rule that cannot be stored or applied as written."""


def _finite(value: Any) -> bool:
    """Whether every number in ``value`` is finite. Python's JSON reads NaN, Infinity and an
    overflowing 1e400 as floats; PostgreSQL's json type refuses them (a 500 on save)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    if isinstance(value, Mapping):
        return all(_finite(item) for item in value.values())
    return True


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], number: int = 1) -> Condition:
        """``raw`` checked; ``number`` (1-based) names it in the error."""
        field, op = raw.get("field"), raw.get("op", "eq")
        if not isinstance(field, str) or not FIELD_PATTERN.match(field):
            raise RuleError(f"condition field {field!r} is not a path such as data.status")
        if op not in OPERATORS:
            raise RuleError(f"condition op {op!r} is not one of {', '.join(OPERATORS)}")
        value = raw.get("value")
        if not _finite(value):
            raise RuleError(
                f"condition {number} ({field} {op}): a number in its value must be finite "
                "(JSON has no NaN or Infinity)"
            )
        if op in ("in", "not_in") and not isinstance(value, list):
            raise RuleError(f"condition op {op!r} needs a list value")
        # ``_compare`` orders numbers, or texts; anything else (an object, a list, true,
        # null) would be saved and never match: refused here, as notifications' conditions do
        if op in ORDERED and (isinstance(value, bool) or not isinstance(value, int | float | str)):
            kind = {dict: "an object", list: "a list", bool: "true/false"}.get(type(value), "null")
            raise RuleError(
                f"condition {number} ({field} {op}) needs a number or a text value, not {kind}"
            )
        return cls(field=field, op=op, value=value)


@dataclass(frozen=True)
class DueIn:
    amount: int
    unit: str  # minutes | hours | days
    business: bool

    @classmethod
    def parse(cls, text: str) -> DueIn:
        match = DUE_IN.match(text.lower()) if isinstance(text, str) else None
        if match is None:
            raise RuleError(
                f"due_in {text!r}: write e.g. '1 business day', '4 business hours', '2 days'"
            )
        amount, unit = int(match["n"]), match["unit"]
        if unit == "week":
            amount, unit = amount * (5 if match["business"] else 7), "day"
        return cls(amount=amount, unit=unit + "s", business=bool(match["business"]))


def lookup(envelope: Mapping[str, Any], path: str) -> Any:
    """The value at ``data.client.name``; ``MISSING`` when any step is absent."""
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
    """``value`` as a number to order by, or ``None``. A NaN ("NaN", "sNaN" in an event's
    text) is no number: Decimal refuses to order it (InvalidOperation), which would fail the
    handler, and every other rule's task for the event with it, on each retry."""
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return None if number.is_nan() else number


def _compare(actual: Any, op: str, expected: Any) -> bool:
    """Numbers (JSON numbers or numeric text, such as a money amount "12500.00") order as
    numbers, texts that are no number as text (ISO dates and times); a number never orders
    against a text that is none: "n/a" is not "at least 1000" by its characters."""
    left, right = _number(actual), _number(expected)
    a: Any
    b: Any
    if left is not None and right is not None:
        a, b = left, right
    elif left is None and right is None and isinstance(actual, str) and isinstance(expected, str):
        a, b = actual, expected
    else:
        return False
    return bool({"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op])


def holds(condition: Condition, envelope: Mapping[str, Any]) -> bool:
    actual = lookup(envelope, condition.field)
    op, expected = condition.op, condition.value
    if op == "exists":
        present = actual is not MISSING and actual is not None
        return present if expected in (None, True) else not present
    if actual is MISSING:
        return False
    if op == "eq":
        return bool(actual == expected or str(actual) == str(expected))
    if op == "ne":
        return not (actual == expected or str(actual) == str(expected))
    if op in ("in", "not_in"):
        inside = any(actual == v or str(actual) == str(v) for v in expected)
        return inside if op == "in" else not inside
    if op == "contains":
        if isinstance(actual, list):
            return expected in actual
        return isinstance(actual, str) and str(expected).lower() in actual.lower()
    return _compare(actual, op, expected)


def matches(conditions: Sequence[Condition], envelope: Mapping[str, Any]) -> bool:
    return all(holds(c, envelope) for c in conditions)


def check_template(template: str) -> None:
    """Refuse a template whose placeholders are not field paths (at save time)."""
    for name in PLACEHOLDER.findall(template):
        if not FIELD_PATTERN.match(name):
            raise RuleError(f"template placeholder {{{name}}} is not a path such as data.title")
    if PLACEHOLDER.sub("", template).count("{") or PLACEHOLDER.sub("", template).count("}"):
        raise RuleError(f"template {template!r} has an unmatched brace")


def render(template: str, envelope: Mapping[str, Any]) -> str:
    """Fill ``{path}`` placeholders from the envelope; a missing value renders empty."""

    def fill(match: re.Match[str]) -> str:
        value = lookup(envelope, match.group(1))
        return "" if value is MISSING or value is None else str(value)

    return PLACEHOLDER.sub(fill, template)
