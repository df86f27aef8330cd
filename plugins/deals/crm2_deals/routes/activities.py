"""`/api/v1/deals/activities` routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])
