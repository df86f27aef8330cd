"""Money: a ``Decimal`` amount with an ISO 4217 currency, never a float.

Stored as integer minor units (exact on SQLite, which has no decimal type);
on the wire as a decimal string (``"1234.50"``). A JSON number is refused: a
float has already lost the exactness money needs.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

# ISO 4217 minor units where they are not 2.
_EXPONENTS = {
    "BHD": 3,
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "RWF": 0,
    "TND": 3,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AMOUNT = re.compile(r"^-?\d{1,15}(\.\d{1,6})?$")


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def check_currency(value: str) -> str:
    code = value.strip().upper()
    if not _CURRENCY.match(code):
        raise ValueError("must be a three-letter ISO 4217 currency code such as EUR")
    return code


def to_minor(amount: Decimal, currency: str) -> int:
    """``Decimal("12.34"), "EUR"`` → ``1234``; more decimals than the currency has → error."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{currency} amounts have at most {exponent(currency)} decimal places")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    places = exponent(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def _parse_amount(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError('send money as a decimal string such as "1234.50", not a JSON number')
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str) and _AMOUNT.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise ValueError('must be a decimal string such as "1234.50"')


# A request/response field: parsed from a string (or int), serialised as a string.
Amount = Annotated[
    Decimal,
    BeforeValidator(_parse_amount),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
]
