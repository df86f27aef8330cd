"""The column sets of deals' CSV files: the client import, and the exports.

Reading a file, cells, the formula guard and list splitting are the kit's
(``crm2_core.api``: ``CsvImport``, ``read_csv``, ``cell``).
"""

from __future__ import annotations

from crm2_core.api import Unprocessable

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
