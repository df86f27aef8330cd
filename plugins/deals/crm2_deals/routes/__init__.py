"""The deals plugin's routers, one module per entity; all under ``/api/v1/deals``."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from crm2_deals.routes import activities, clients, deals, pipelines, policies

    return [clients.router, pipelines.router, deals.router, policies.router, activities.router]
