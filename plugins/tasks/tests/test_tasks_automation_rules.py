"""Automation rules as data: conditions, templates and due_in, on plain envelopes."""

from __future__ import annotations

import pytest
from crm2_tasks.automation import (
    Condition,
    DueIn,
    RuleError,
    check_template,
    matches,
    render,
)

EVENT = {
    "id": "0b9c…",
    "type": "deals.deal.created",
    "subject": "7f0e6a8e-2f55-4a43-8b0a-7b7c1b3b7d10",
    "actor": {"kind": "user", "id": "u-1"},
    "data": {
        "title": "Fleet cover",
        "value": "12500.00",
        "currency": "EUR",
        "tags": ["fleet"],
        "when": "2026-03-27T16:00:00Z",
    },
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "data.currency", "op": "eq", "value": "EUR"}, True),
        ({"field": "data.currency", "op": "ne", "value": "EUR"}, False),
        ({"field": "data.value", "op": "gt", "value": 10000}, True),
        ({"field": "data.value", "op": "lte", "value": "999.99"}, False),
        ({"field": "data.currency", "op": "in", "value": ["USD", "EUR"]}, True),
        ({"field": "data.currency", "op": "not_in", "value": ["USD"]}, True),
        ({"field": "data.tags", "op": "contains", "value": "fleet"}, True),
        ({"field": "data.title", "op": "contains", "value": "FLEET"}, True),
        ({"field": "data.missing", "op": "exists"}, False),
        ({"field": "data.missing", "op": "exists", "value": False}, True),
        ({"field": "data.missing", "op": "eq", "value": None}, False),
        ({"field": "data.title", "op": "gt", "value": 5}, False),  # text vs number: no match
        # a number as text orders only numbers, never text by its characters ("F" > "5")
        ({"field": "data.title", "op": "gt", "value": "5"}, False),
        ({"field": "data.title", "op": "lte", "value": "5"}, False),
        ({"field": "data.value", "op": "lt", "value": "abc"}, False),
        ({"field": "data.value", "op": "gte", "value": "abc"}, False),
        ({"field": "data.when", "op": "gte", "value": "2026-03-01"}, True),  # ISO text
        ({"field": "data.when", "op": "lt", "value": "2026-03-01"}, False),
    ],
)
def test_conditions(condition: dict[str, object], expected: bool) -> None:
    assert matches([Condition.parse(condition)], EVENT) is expected


@pytest.mark.parametrize(
    "raw",
    [
        {"field": "data.__class__", "op": "eq"},
        {"field": "data value", "op": "eq"},
        {"field": "data.value", "op": "regex"},
        {"field": "data.value", "op": "in", "value": "EUR"},
        # gt/gte/lt/lte order numbers or texts: anything else could never hold
        {"field": "data.value", "op": "gt"},
        {"field": "data.value", "op": "gte", "value": True},
        {"field": "data.value", "op": "lt", "value": [1000]},
        {"field": "data.value", "op": "lte", "value": {"amount": 1000}},
    ],
)
def test_bad_conditions_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(RuleError):
        Condition.parse(raw)


def test_templates_fill_paths_and_leave_missing_values_empty() -> None:
    assert (
        render("Call about {data.title} ({data.currency})", EVENT) == "Call about Fleet cover (EUR)"
    )
    assert render("{subject}", EVENT) == EVENT["subject"]
    assert render("Hello {data.nobody}!", EVENT) == "Hello !"


@pytest.mark.parametrize("template", ["{data.__dict__}", "{0}", "oops {", "{data.title!r}"])
def test_templates_with_anything_but_paths_are_refused(template: str) -> None:
    with pytest.raises(RuleError):
        check_template(template)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 business day", DueIn(1, "days", True)),
        ("4 business hours", DueIn(4, "hours", True)),
        ("2 days", DueIn(2, "days", False)),
        ("30 minutes", DueIn(30, "minutes", False)),
        ("1 business week", DueIn(5, "days", True)),
        (" 2 Weeks ", DueIn(14, "days", False)),
    ],
)
def test_due_in(text: str, expected: DueIn) -> None:
    assert DueIn.parse(text) == expected


@pytest.mark.parametrize("text", ["tomorrow", "-1 day", "1.5 hours", "99999 days", ""])
def test_bad_due_in_is_refused(text: str) -> None:
    with pytest.raises(RuleError):
        DueIn.parse(text)


@pytest.mark.parametrize("nan", ["NaN", "nan", "sNaN", "-NaN"])
@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
def test_a_nan_in_the_event_or_the_rule_is_no_number_and_raises_nothing(nan: str, op: str) -> None:
    """Decimal's NaN refuses to be ordered (InvalidOperation): it would fail the handler,
    and with it every other rule's task for the event, on every retry."""
    event = {**EVENT, "data": {**EVENT["data"], "total": nan}}
    assert not matches([Condition("data.total", op, 1000)], event)
    matches([Condition("data.value", op, nan)], EVENT)  # text against text: no error
