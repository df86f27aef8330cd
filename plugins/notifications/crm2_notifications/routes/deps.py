"""Permission dependencies, declared once for the plugin's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from crm2_core.api import require
from crm2_hookspecs import Principal

NotificationsRead = Annotated[Principal, Depends(require("notifications:read"))]
NotificationsAdmin = Annotated[Principal, Depends(require("notifications:admin"))]
