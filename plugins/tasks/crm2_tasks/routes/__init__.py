"""The tasks plugin's routers; all under ``/api/v1/tasks``."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from crm2_tasks.routes import admin, feed, tasks

    return [tasks.router, admin.router, feed.router]
