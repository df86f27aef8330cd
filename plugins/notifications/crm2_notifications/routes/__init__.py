"""The notifications plugin's routers; all under ``/api/v1/notifications``."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from crm2_notifications.routes import admin, feed, telegram

    return [feed.router, admin.router, telegram.router]
