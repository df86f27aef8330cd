"""Money: a ``Decimal`` amount with an ISO 4217 currency, never a float.

Stored as integer minor units (exact on SQLite, which has no decimal type);
on the wire as a decimal string (``"1234.50"``). A JSON number is refused: a
float has already lost the exactness money needs.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# ISO 4217 (list one, 2024): the active currency and fund codes. Precious metals,
# special drawing rights and the testing / "no currency" codes (XAU, XDR, XTS, XXX, …)
# are not money a CRM records.
_ISO_4217 = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL
    BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF
    DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF
    IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
    LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO
    NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK
    SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH
    UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    ZWL
"""
CURRENCIES = frozenset(_ISO_4217.split())

# ISO 4217 minor units where they are not 2.
_EXPONENTS = {
    "BHD": 3,
    "BIF": 0,
    "CLF": 4,
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
    "UYW": 4,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}
# [0-9], not \d: Python's and pydantic's \d also take full-width and Arabic-Indic digits
# (U+FF11, U+0661), which Decimal reads as numbers; JSON Schema's \d is [0-9]
AMOUNT_PATTERN = r"^-?[0-9]{1,15}(\.[0-9]{1,6})?$"
MAX_MINOR_UNITS = 2**63 - 1  # a BIGINT column
_AMOUNT = re.compile(AMOUNT_PATTERN)


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def check_currency(value: str) -> str:
    """``" eur"`` → ``"EUR"``; a code ISO 4217 does not list (``XYZ``) is a ``ValueError``."""
    code = value.strip().upper()
    if code not in CURRENCIES:
        raise ValueError("must be an ISO 4217 currency code such as EUR")
    return code


def to_minor(amount: Decimal, currency: str) -> int:
    """``Decimal("12.34"), "EUR"`` → ``1234``; more decimals than the currency has, or more
    minor units than a 64-bit column holds (15 digits of a 4-decimal CLF), → error."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{currency} amounts have at most {exponent(currency)} decimal places")
    if abs(scaled) > MAX_MINOR_UNITS:
        largest = Decimal(MAX_MINOR_UNITS).scaleb(-exponent(currency))
        raise ValueError(f"{currency} amounts are at most {largest:f} in size")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """``1234, "EUR"`` → ``Decimal("12.34")``: the integer's digits with the currency's
    exponent, so always exactly its decimal places (``0`` → ``"0.00"``)."""
    return Decimal(minor).scaleb(-exponent(currency))


def _parse_amount(value: Any) -> Decimal:
    if isinstance(value, Decimal):  # built in Python (every response), not parsed from a request
        return value
    if isinstance(value, int | float):  # bool too
        raise ValueError('send money as a decimal string such as "1234.50", not a JSON number')
    if isinstance(value, str) and _AMOUNT.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise ValueError('must be a decimal string such as "1234.50"')


# A request/response field: parsed from a decimal string, serialised as one. A JSON
# number is refused: a float has lost exactness already, and an integer would skip
# the 15-digit check. The OpenAPI document says "string" only.
Amount = Annotated[
    Decimal,
    BeforeValidator(_parse_amount),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": AMOUNT_PATTERN,
            "description": 'a decimal string such as "1234.50", never a JSON number',
            "examples": ["1234.50"],
        }
    ),
]


def _check_currency_input(value: Any) -> Any:
    return check_currency(value) if isinstance(value, str) else value


# An ISO 4217 code; lower case is taken and upper-cased.
Currency = Annotated[
    str,
    BeforeValidator(_check_currency_input),
    WithJsonSchema({"type": "string", "enum": sorted(CURRENCIES), "examples": ["EUR"]}),
]
