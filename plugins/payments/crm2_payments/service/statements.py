"""Bank statement CSV: columns date, amount, currency, reference, counterparty.

The delimiter (``,`` ``;`` tab) is detected from the header line, a UTF-8 BOM is
tolerated, amounts may use a decimal comma (``1.234,56``) or point
(``1,234.56``); a separator used twice groups digits (``1,234,567``); ``1,234`` or
``1.234`` alone is read by the decimal separator the file's other amounts show, else is
thousands in a currency without decimals (JPY) and refused as ambiguous in any other
(``_amount``); dates are ISO (``2026-12-03``) or day first (``03.12.2026``,
``03/12/2026``). A line's fingerprint (its values plus how many identical lines
came before it in the file) makes a re-uploaded statement add nothing.

Errors name the spreadsheet row (the header is row 1), as the kit's CSV imports do;
a quoted cell may hold a line break, so a syntax error names the file's line too
where it differs. A quote never closed is refused, never a cell that swallows the
lines after it. A row with fewer cells than the header, or more that are not blank
(``2026-12-03,10.00,EUR,Invoice 5, part 2,Acme``: an unquoted delimiter shifts the
cells), is refused, never read with its cells in the wrong columns. A file without a
line (a header only, or blank rows) is refused too.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Context, Decimal, InvalidOperation, Rounded
from typing import Any

from crm2_core.api import check_currency, exponent
from crm2_payments.errors import InvalidStatement
from crm2_payments.service.money import MAX_MINOR

COLUMNS = ("date", "amount", "currency", "reference", "counterparty")
# ASCII digits only: ``\d`` (and Decimal) read Arabic-Indic digits (U+0660-U+0669) and
# other scripts' as 0-9, an amount no bank export writes and no person checks at a glance
_AMOUNT = re.compile(r"^[+-]?[0-9.,' ]+$")
# scaling to minor units must be exact: the default context (28 digits) rounds a longer
# amount (1.0000000000000000000000000001 EUR became 1.00); past 40 digits it is refused
_EXACT = Context(prec=40, traps=[Rounded, InvalidOperation])


@dataclass(frozen=True)
class ParsedLine:
    booked_on: date
    amount_minor: int
    currency: str
    reference: str
    counterparty: str
    fingerprint: str


def _date(value: str, number: int) -> date:
    value = value.strip()
    for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise InvalidStatement(f"row {number}: date {value[:40]!r} is not YYYY-MM-DD or DD.MM.YYYY")


# one separator once, three digits after it, a first group that could be thousands:
# 1,234 is 1234 in one bank's export and 1.234 in another's
_AMBIGUOUS = re.compile(r"^[1-9][0-9]{0,2}[.,][0-9]{3}$")
# digits grouped by thousands (1,234,567) or the Indian way (12,34,567); {s}: the separator
_GROUPED = (r"^[0-9]{{1,3}}(?:{s}[0-9]{{3}})*$", r"^[0-9]{{1,2}}(?:{s}[0-9]{{2}})*{s}[0-9]{{3}}$")


def decimal_mark(value: str) -> str | None:
    """The decimal separator an amount shows unambiguously, if it shows one: the last of
    two kinds (``1.234,56``: ``,``), the other of one used twice (``1.234.567``: ``,``), one
    used once with other than three digits after it or a first group no thousands could be
    (``12.5``, ``0.125``, ``1234.500``: ``.``). ``1,234`` shows none."""
    raw = _clean(value).lstrip("+-")
    marks = [c for c in raw if c in ",."]
    if not marks:
        return None
    if len(set(marks)) == 2:
        return marks[-1]
    if len(marks) > 1:
        return "," if marks[0] == "." else "."
    if _AMBIGUOUS.match(raw):
        return None
    return marks[0]


def file_mark(values: list[str]) -> str | None:
    """The decimal separator a statement's amounts agree on (one bank, one format); ``None``
    when none shows one, or they disagree."""
    found = {mark for v in values if (mark := decimal_mark(v)) is not None}
    return found.pop() if len(found) == 1 else None


# what banks put between groups of digits besides , and .: spaces (a no-break space, and
# the narrow one, in French exports) and apostrophes (Swiss: ' or U+2019)
_GROUP_MARKS = str.maketrans("", "", " \u00a0\u202f\u2009'\u2019")


def _clean(value: str) -> str:
    return value.strip().translate(_GROUP_MARKS)


def _amount(value: str, currency: str, number: int, mark: str | None = None) -> int:
    """An amount in minor units. ``mark``: the decimal separator the file's other amounts
    show, which reads an ambiguous one (``1,234``); without it such an amount is 422 where
    both readings could be an amount (3 decimals) or where its currency has cents (2: an
    amount without its cents suggests a misread column), and thousands in a currency
    without decimals (JPY ``1,234`` is 1234: no decimal reading is a yen amount)."""
    raw = _clean(value)
    if not raw or not _AMOUNT.match(raw):
        raise InvalidStatement(f"row {number}: amount {value[:40]!r} is not a number")
    digits = exponent(currency)
    sign, body = ("-", raw[1:]) if raw[0] == "-" else ("", raw.lstrip("+"))
    decimal = decimal_mark(body)
    if decimal is None and any(c in body for c in ",."):  # 1,234: ambiguous alone
        decimal = mark if mark is not None else ("" if digits == 0 else None)
        if decimal is None:
            raise _ambiguous(value, body, sign, currency, digits, number)
        if decimal == "":  # no decimals: the separator groups thousands
            decimal = "," if body[-4] == "." else "."
    whole, _, fraction = body.rpartition(decimal) if decimal and decimal in body else (body, "", "")
    if not whole and fraction:  # ",5": no digit before the separator
        whole = "0"
    group = "," if decimal == "." else "."
    if group in whole and not any(re.match(g.format(s=re.escape(group)), whole) for g in _GROUPED):
        raise InvalidStatement(
            f"row {number}: amount {value[:40]!r} is not a number: {group!r} groups its digits "
            "in threes (1,234,567)"
        )
    whole = whole.replace(group, "")
    try:
        amount = Decimal(f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}")
    except InvalidOperation:
        raise InvalidStatement(f"row {number}: amount {value[:40]!r} is not a number") from None
    refused = InvalidStatement(f"row {number}: {value[:40]!r} is not an amount in {currency}")
    try:
        scaled = amount.scaleb(digits, context=_EXACT)
    except Rounded:
        raise refused from None
    if scaled != scaled.to_integral_value() or abs(scaled) > MAX_MINOR:
        raise refused
    return int(scaled)


def _ambiguous(
    value: str, body: str, sign: str, currency: str, digits: int, number: int
) -> InvalidStatement:
    sep = body[-4]
    whole, part = body.split(sep)
    other = "." if sep == "," else ","
    cents = "." + "0" * digits
    both = f"{sign}{whole}{sep}{part}{other}{'0' * digits}"
    says = f"{sign}{whole}{part}{cents} (or {both}, with both separators)"
    if digits >= 3:  # 1.234 is an amount too: one way each
        says = (
            f"{says} for thousands, {sign}{whole}{sep}{part}0 for {sign}{whole}.{part} "
            f"{currency}, or give the file one amount that shows the decimal separator"
        )
    return InvalidStatement(
        f"row {number}: amount {value[:40]!r} is ambiguous: {sep!r} may separate thousands "
        f"or decimals, and {currency} has {digits} decimals; write {says}"
    )


def parse(content: bytes, max_rows: int) -> list[ParsedLine]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidStatement("the file is not UTF-8 text") from None
    if "\x00" in text:
        raise InvalidStatement("the file holds a NUL character")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InvalidStatement("the file is empty: it needs a header line " + ",".join(COLUMNS))
    header = lines[0]
    delimiter = max((";", ",", "\t"), key=header.count)
    # newline="": the csv module reads CR, LF and CRLF line ends itself. strict: a quote
    # never closed is an error, not a counterparty that swallows the lines after it
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    where = _Where()
    try:
        parsed = _lines(reader, where, max_rows)
    except csv.Error as exc:
        if "end of data" in str(exc):
            raise InvalidStatement(f"the quote opened in {where} is never closed") from None
        raise InvalidStatement(f"{where}: {exc}") from None
    if not parsed:
        # an empty statement would be stored (and announced) with nothing in it
        raise InvalidStatement("the file has no lines: only a header, no row from row 2 on")
    return parsed


@dataclass
class _Where:
    """The row being read and the file's line it starts on (a quoted cell may span lines)."""

    row: int = 1
    line: int = 1

    def __str__(self) -> str:
        if self.row == self.line:
            return f"row {self.row}"
        return f"row {self.row} (line {self.line} of the file)"


def _lines(reader: Any, where: _Where, max_rows: int) -> list[ParsedLine]:
    names = [h.strip().lower() for h in next(reader)]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise InvalidStatement(
            f"the header lacks {', '.join(missing)} (found {', '.join(names)[:200]})"
        )
    # which of two "amount" columns is the amount? Refused rather than guessed
    repeated = [c for c in COLUMNS if names.count(c) > 1]
    if repeated:
        raise InvalidStatement(f"the header names {', '.join(repeated)} more than once")
    at = {name: names.index(name) for name in COLUMNS}
    rows: list[tuple[int, list[str]]] = []
    where.row, where.line = 2, reader.line_num + 1
    for cells in reader:
        number = where.row
        where.row, where.line = number + 1, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= max_rows:
            raise InvalidStatement(f"more than {max_rows} lines (CRM2_PAYMENTS_STATEMENT_MAX_ROWS)")
        # blank cells past the header's are a spreadsheet's padding; a filled one means
        # the row's cells are shifted (a delimiter in an unquoted cell) and one would be lost
        if len(cells) < len(names):
            raise InvalidStatement(f"row {number}: {len(cells)} cells, the header has {len(names)}")
        if any(c.strip() for c in cells[len(names) :]):
            raise InvalidStatement(
                f"row {number}: {len(cells)} cells, the header has {len(names)} "
                "(is a cell holding the delimiter not quoted?)"
            )
        rows.append((number, cells))
    # one bank, one format: an amount that shows the decimal separator reads the ambiguous
    mark = file_mark([cells[at["amount"]] for _, cells in rows])
    parsed: list[ParsedLine] = []
    seen: dict[tuple[object, ...], int] = {}
    for number, cells in rows:
        try:
            currency = check_currency(cells[at["currency"]])
        except ValueError:
            raise InvalidStatement(
                f"row {number}: {cells[at['currency']][:10]!r} is no ISO 4217 code"
            ) from None
        booked = _date(cells[at["date"]], number)
        amount = _amount(cells[at["amount"]], currency, number, mark)
        reference = cells[at["reference"]].strip()[:200]
        counterparty = cells[at["counterparty"]].strip()[:200]
        key = (booked, amount, currency, reference, counterparty)
        seen[key] = seen.get(key, 0) + 1
        digest = hashlib.sha256("|".join(map(str, (*key, seen[key]))).encode()).hexdigest()
        parsed.append(ParsedLine(booked, amount, currency, reference, counterparty, digest))
    return parsed
