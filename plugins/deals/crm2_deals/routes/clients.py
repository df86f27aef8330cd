"""`/api/v1/deals/clients` routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])
