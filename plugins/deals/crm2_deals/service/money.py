"""Wire amounts to stored minor units, one rule for deal values, premiums and filters."""

from __future__ import annotations

from decimal import Decimal

from crm2_core.api import to_minor
from crm2_deals.errors import InvalidMoney


def minor_units(value: Decimal, currency: str, noun: str = "an amount") -> int:
    """The stored integer; 422 for a negative amount or more decimals than the currency has."""
    if value < 0:
        raise InvalidMoney(f"{noun} cannot be negative")
    try:
        return to_minor(value, currency)
    except ValueError as exc:
        raise InvalidMoney(str(exc)) from exc
