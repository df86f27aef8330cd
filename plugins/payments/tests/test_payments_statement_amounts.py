"""Statement amounts, table-driven: how each separator is read per currency exponent
(ISO 4217 minor units: JPY 0, EUR 2, KWD 3, CLF 4) and per the file's other amounts.

``1,234`` alone shows no decimal separator: thousands in a currency without decimals (no
decimal reading is a yen amount), refused where both readings could be amounts (3
decimals or more: it was read as 1.234 KWD) and where the currency has cents (unchanged),
read by the file's format when another amount in the file shows its decimal separator.
A separator used twice groups thousands (``1,234,567`` was "not a number")."""

from __future__ import annotations

import pytest
from crm2_payments.errors import InvalidStatement
from crm2_payments.service.statements import parse

HEADER = "date;amount;currency;reference;counterparty"


def read(*amounts: tuple[str, str]) -> list[int]:
    """The minor units of a statement of these ``(amount, currency)`` lines."""
    rows = [f"2026-12-01;{amount};{currency};R;Y" for amount, currency in amounts]
    content = "\r\n".join([HEADER, *rows]).encode()
    return [line.amount_minor for line in parse(content, max_rows=100)]


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        # a separator used twice groups (thousands, or the Indian lakh)
        ("1,234,567", "EUR", 123_456_700),
        ("1.234.567", "EUR", 123_456_700),
        ("1,234,567", "KWD", 1_234_567_000),
        ("1,234,567", "JPY", 1_234_567),
        ("-1.234.567", "JPY", -1_234_567),
        ("12,34,567.50", "INR", 123_456_750),
        # both separators: the last one is the decimal one
        ("1.234.567,89", "EUR", 123_456_789),
        ("1,234,567.89", "EUR", 123_456_789),
        ("1,234.500", "KWD", 1_234_500),
        ("1.234,5", "KWD", 1_234_500),
        ("1'234.50", "CHF", 123_450),
        ("1 234,50", "EUR", 123_450),
        # a no-break space, a narrow one (French exports), a typographic apostrophe (Swiss)
        ("1\u00a0234,50", "EUR", 123_450),
        ("1\u202f234\u202f567,50", "EUR", 123_456_750),
        ("-1\u2009234,50", "EUR", -123_450),
        ("1\u2019234.50", "CHF", 123_450),
        # one separator, not three digits after it (or a first group no thousands has)
        ("12.50", "EUR", 1_250),
        ("12,5", "EUR", 1_250),
        ("0.125", "KWD", 125),
        ("0,125", "KWD", 125),
        ("1234,567", "KWD", 1_234_567),
        ("12.5", "KWD", 12_500),
        ("1.2340", "KWD", 1_234),
        ("1234", "JPY", 1234),
        # JPY has no decimals: 1,234 is a thousand and more
        ("1,234", "JPY", 1234),
        ("1.234", "JPY", 1234),
        ("-999,999", "JPY", -999_999),
    ],
)
def test_an_amount_is_read_by_its_separators_and_currency(
    amount: str, currency: str, minor: int
) -> None:
    assert read((amount, currency)) == [minor]


@pytest.mark.parametrize(
    ("amount", "currency", "says"),
    [
        ("1,234", "KWD", "ambiguous"),  # was 1.234 KWD
        ("1.234", "KWD", "ambiguous"),
        ("-12,500", "OMR", "ambiguous"),
        ("1,234", "BHD", "ambiguous"),
        ("1,234", "CLF", "ambiguous"),
        ("1,234", "EUR", "ambiguous"),
        ("1.234", "USD", "ambiguous"),
        ("1,2.50", "EUR", "groups its digits in threes"),
        ("12,34,56", "EUR", "groups its digits in threes"),
        ("1.234,5.6", "EUR", "not a number"),
        ("1,23", "JPY", "not an amount in JPY"),
        ("1.5", "JPY", "not an amount in JPY"),
        ("1.234,567", "EUR", "not an amount in EUR"),
        (".", "EUR", "not a number"),
    ],
)
def test_an_amount_that_is_no_amount_or_could_be_two_is_refused(
    amount: str, currency: str, says: str
) -> None:
    with pytest.raises(InvalidStatement) as refused:
        read((amount, currency))
    assert says in str(refused.value), str(refused.value)


@pytest.mark.parametrize(
    ("shows", "amount", "currency", "minor"),
    [
        ("1,234.00", "1,234", "KWD", 1_234_000),  # point decimals: the comma groups
        ("12.50", "1.234", "KWD", 1_234),
        ("1.234,00", "1,234", "KWD", 1_234),  # comma decimals
        ("12,50", "1.234", "KWD", 1_234_000),
        ("12,50", "1.234", "EUR", 123_400),
        ("1.234.567", "1,234", "KWD", 1_234),  # points group: the comma is the decimal
        ("1,234,567", "1.234", "KWD", 1_234),
    ],
)
def test_the_files_other_amounts_read_an_ambiguous_one(
    shows: str, amount: str, currency: str, minor: int
) -> None:
    """One bank, one format: an amount that shows the decimal separator reads the rest."""
    assert read((shows, "EUR"), (amount, currency))[1] == minor


def test_amounts_that_disagree_on_the_decimal_separator_read_no_ambiguous_one() -> None:
    with pytest.raises(InvalidStatement, match="ambiguous"):
        read(("1,234.00", "EUR"), ("12,50", "EUR"), ("1,234", "KWD"))
    assert read(("1,234.00", "EUR"), ("12,50", "EUR")) == [123_400, 1_250]


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("1,234", "write 1234.000 (or 1,234.000, with both separators) for thousands, "
                  "1,2340 for 1.234 KWD"),
        ("-1.234", "write -1234.000 (or -1.234,000, with both separators) for thousands, "
                   "-1.2340 for -1.234 KWD"),
    ],
)  # fmt: skip
def test_the_ambiguous_422_says_how_to_write_either_reading(amount: str, says: str) -> None:
    with pytest.raises(InvalidStatement) as refused:
        read((amount, "KWD"))
    assert says in str(refused.value), str(refused.value)
    # and what it says to write is read as said
    thousands, decimals = says.removeprefix("write ").split(" (or ")[0], says.split(", ")[-1]
    assert read((thousands, "KWD")) == [1_234_000 * (-1 if amount[0] == "-" else 1)]
    assert read((decimals.split(" for ")[0], "KWD")) == [1_234 * (-1 if amount[0] == "-" else 1)]


@pytest.mark.parametrize(
    "amount",
    [
        "\u0661\u0662,\u0665\u0660",  # Arabic-Indic: was read as 12.50
        "\u06f1\u06f2.\u06f5\u06f0",  # Extended Arabic-Indic (Persian)
        "\u0967\u0968.\u096b\u0966",  # Devanagari
        "\uff11\uff12.\uff15\uff10",  # fullwidth
        "12.5\u0660",  # one foreign digit among ASCII ones
        "1,2\u06634.00",
    ],
)
def test_an_amount_of_other_than_ascii_digits_is_refused_naming_its_row(amount: str) -> None:
    """``\\d`` and Decimal accept any script's digits: a statement's amounts are ASCII."""
    content = "\r\n".join([HEADER, "2026-12-01;1,00;EUR;R;Y", f"2026-12-01;{amount};EUR;R;Y"])
    with pytest.raises(InvalidStatement) as refused:
        parse(content.encode(), max_rows=100)
    assert str(refused.value).startswith("row 3: amount "), str(refused.value)
    assert "not a number" in str(refused.value), str(refused.value)
