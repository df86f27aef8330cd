"""The plugin's migrations with only the core and payments: round-trip, no drift from the models.

Through the ``crm2`` command line, as an operator runs them, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from crm2_core.testing import PluginMigrations, TestDatabase


def test_round_trip_and_no_drift_with_only_payments(crm2_fresh_database: TestDatabase) -> None:
    check = PluginMigrations("payments", crm2_fresh_database)
    created = check.assert_round_trip_and_no_drift()
    assert {"payments_payment", "payments_allocation", "payments_schedule",
            "payments_statement_line", "payments_webhook_delivery"} <= created  # fmt: skip
    assert check.tables("deals_") == set()  # payments needs no deals


BEFORE_OVERDUE_REPAIR = "b3c1d2e4f5a6"


def test_a_part_paid_payment_left_behind_by_the_overdue_job_is_overdue_again(
    crm2_fresh_database: TestDatabase,
) -> None:
    """Before, a part payment on an overdue payment made it ``partially_paid`` with its
    ``overdue_at`` set: the job never marked it again. The data migration makes those
    overdue (and leaves a part-paid payment the job never marked alone)."""
    check = PluginMigrations("payments", crm2_fresh_database)
    check.upgrade()
    check.crm2("migrate", "--plugin", "payments", "downgrade", BEFORE_OVERDUE_REPAIR)
    check.crm2("users", "create", "--email", "a@example.com", "--password", "x" * 16,
               "--role", "agent")  # fmt: skip
    (owner,) = check.scalars("SELECT id FROM auth_user")
    pg = "postgresql" in check.database.url
    ids = [uuid.uuid4() for _ in range(2)]

    def insert(sync: Any) -> None:
        for row_id, overdue_at in zip(ids, ("'2026-11-01 00:00:00+00:00'", "NULL"), strict=True):
            sync.execute(
                text(
                    "INSERT INTO payments_payment (id, direction, amount_minor, currency,"
                    " paid_minor, refunded_minor, status, due_date, overdue_at, method, payer,"
                    " payee, reference, note, insurer, product, provider, owner_id, created_at,"
                    " updated_at, version) VALUES (:id, 'incoming', 1000, 'EUR', 400, 0,"
                    f" 'partially_paid', '2026-10-01', {overdue_at}, '', '', '', '', '', '', '',"
                    " '', :owner, '2026-10-01 00:00:00+00:00', '2026-10-01 00:00:00+00:00', 1)"
                ),
                {"id": row_id if pg else row_id.hex, "owner": owner},
            )
        sync.commit()

    check.inspect_db(insert)
    check.upgrade()
    statuses = check.scalars("SELECT status FROM payments_payment ORDER BY overdue_at IS NULL")
    assert statuses == ["overdue", "partially_paid"]
