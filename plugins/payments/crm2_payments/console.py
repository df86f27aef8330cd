"""The payments sections of the web console (``crm2_console_views``); rendered by the console."""

from __future__ import annotations

from crm2_hookspecs import ConsoleView

VIEWS = (
    ConsoleView(
        key="payments.payments",
        title="Payments",
        titles={"ru": "Платежи"},
        list_path="/api/v1/payments/payments",
        item_path="/api/v1/payments/payments/{id}",
        permission="payments:read",
        write_permission="payments:write",
        item_schema="PaymentPublic",
        create_schema="PaymentCreate",
        update_schema="PaymentUpdate",
        columns=(
            "due_date",
            "amount",
            "currency",
            "paid",
            "outstanding",
            "status",
            "payer",
            "reference",
        ),
        filters=("policy_id", "client_id", "q", "due_from", "due_to"),
        form=(
            "direction",
            "amount",
            "currency",
            "due_date",
            "policy_id",
            "client_id",
            "payer",
            "reference",
        ),
        edit=("amount", "due_date", "method", "payer", "payee", "reference", "note"),
        screen="payments.list",
        stream="payments",
        order=50,
    ),
    ConsoleView(
        key="payments.schedules",
        title="Payment schedules",
        titles={"ru": "Графики платежей"},
        list_path="/api/v1/payments/schedules",
        permission="payments:read",
        write_permission="payments:write",
        item_schema="SchedulePublic",
        columns=(
            "policy_id",
            "insurer",
            "premium",
            "currency",
            "frequency",
            "instalments",
            "start_date",
            "status",
        ),
        filters=("policy_id",),
        stream="payments",
        order=55,
    ),
)
