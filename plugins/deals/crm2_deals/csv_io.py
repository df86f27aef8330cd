"""CSV in: the client import file, and the column sets of deals' exports.

Cells, the formula guard and list splitting are the kit's (``crm2_core.api``).
No database here: the services feed rows in and take parsed rows out.
"""

from __future__ import annotations

import csv
import io

from crm2_core.api import Unprocessable, unguard, unstorable_text

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


class CsvFileInvalid(Unprocessable):
    slug, title = "deals-csv-invalid", "The CSV file cannot be read"


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
