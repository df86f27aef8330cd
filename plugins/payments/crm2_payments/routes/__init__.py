"""The payments plugin's routers; all under ``/api/v1/payments``."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from crm2_payments.routes import admin, payments, reconciliation, webhooks

    return [payments.router, admin.router, reconciliation.router, webhooks.router]
