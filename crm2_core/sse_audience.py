"""The contract of a channel rule that the streams may evaluate once per audience.

A ``can_see`` method marked with :func:`audience_rule` promises that its owner has
``stream_audience(principal, context)`` (a hashable key: principals with equal keys see the
same events) and ``stream_sees(audience, event)`` (what ``can_see`` answers, without
an await). ``crm2_core.kit.visibility.RecordRules`` is one; an override of ``can_see``
that is not marked again is awaited per connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
MARK = "__crm2_audience_rule__"


def audience_rule(can_see: F) -> F:
    setattr(can_see, MARK, True)
    return can_see


def is_audience_rule(rule: object) -> bool:
    """A bound ``can_see`` of an object that keeps the contract above."""
    return getattr(getattr(rule, "__func__", None), MARK, False) is True and hasattr(
        rule, "__self__"
    )
