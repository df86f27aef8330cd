"""CSV in and out: the client import file, export rows, and the spreadsheet-formula guard.

No database here: the services feed rows in and take parsed rows out.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from crm2_core.api import Unprocessable, unstorable_text

CLIENT_IMPORT_COLUMNS = ("kind", "name", "emails", "phones", "tax_id", "address", "tags")
CLIENT_EXPORT_COLUMNS = (
    "id",
    "kind",
    "name",
    "emails",
    "phones",
    "tax_id",
    "address",
    "tags",
    "owner_email",
    "archived",
    "created_at",
    "updated_at",
)
DEAL_EXPORT_COLUMNS = (
    "id",
    "title",
    "client_id",
    "client_name",
    "pipeline",
    "stage",
    "status",
    "value",
    "currency",
    "owner_email",
    "source",
    "expected_close_date",
    "lost_reason",
    "closed_at",
    "created_at",
    "updated_at",
)
LIST_SEPARATOR = ";"
# Cells a spreadsheet would run as a formula. A number or phone number (+49 30 …, -12.50) is
# left alone; anything else starting with one of these gets a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBERISH = re.compile(r"^[+-][\d\s().,/-]*$")


class CsvFileInvalid(Unprocessable):
    slug, title = "deals-csv-invalid", "The CSV file cannot be read"


def safe_cell(value: str) -> str:
    if value.startswith(_FORMULA_START) and not _NUMBERISH.match(value):
        return "'" + value
    return value


def unguard(value: str) -> str:
    """Undo :func:`safe_cell`, so an export can be imported again."""
    if value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def cell(value: Any) -> str:
    """One value as CSV text: lists joined by ``;``, dates ISO, money as its decimal string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple):
        return safe_cell(LIST_SEPARATOR.join(str(v) for v in value))
    return safe_cell(str(value))


def render(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV text (``\\r\\n`` line ends, as RFC 4180 says)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return buffer.getvalue()


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]


def parse_rows(content: bytes, max_rows: int) -> list[tuple[int, dict[str, str]]]:
    """``(spreadsheet row, {column: text})`` for every data row; the header is row 1.

    Unknown columns are ignored (an export can be imported as it is); ``name``
    is the one required column.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFileInvalid("the file is not UTF-8 text") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "name" not in header:
        raise CsvFileInvalid(
            "the first row must name the columns, at least 'name'; known columns: "
            + ", ".join((*CLIENT_IMPORT_COLUMNS, "owner_email"))
        )
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for number, record in enumerate(reader, start=2):
            if len(rows) >= max_rows:
                raise CsvFileInvalid(f"the file has more than {max_rows} rows; split it")
            values = {
                k: unguard((v or "").strip())
                for k, v in record.items()
                if isinstance(k, str) and isinstance(v, str)
            }
            for column, value in values.items():
                reason = unstorable_text(value)
                if reason:
                    raise CsvFileInvalid(f"row {number}, column {column}: {reason}")
            if any(values.values()):
                rows.append((number, values))
    except csv.Error as exc:
        raise CsvFileInvalid(f"the file is not valid CSV: {exc}") from exc
    return rows
