"""Minor units ↔ amounts: exact, with the currency's decimal places, both ways."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from crm2_core.money import exponent, from_minor, to_minor


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD", "CLF"])
def test_from_minor_has_the_currencys_places_and_round_trips(currency: str) -> None:
    places = exponent(currency)
    rng = random.Random(7)
    samples = [0, 1, -1, 10, -100, 10**15 - 1, -(10**15 - 1)]
    samples += [rng.randint(-(10**15), 10**15) for _ in range(2000)]
    for minor in samples:
        amount = from_minor(minor, currency)
        assert amount.as_tuple().exponent == -places
        assert amount == Decimal(minor) / (10**places)
        assert to_minor(amount, currency) == minor


def test_from_minor_reads_as_the_wire_shows_it() -> None:
    assert format(from_minor(123450, "EUR"), "f") == "1234.50"
    assert format(from_minor(0, "EUR"), "f") == "0.00"
    assert format(from_minor(-5, "KWD"), "f") == "-0.005"
    assert format(from_minor(1234, "JPY"), "f") == "1234"
