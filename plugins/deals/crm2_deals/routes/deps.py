"""The deals permissions as route dependencies, declared once for every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from crm2_core.api import Permissions, require
from crm2_hookspecs import Principal

PERMISSIONS = Permissions(read="deals:read", write="deals:write", delete="deals:delete")
DealsRead = Annotated[Principal, Depends(require("deals:read"))]
DealsWrite = Annotated[Principal, Depends(require("deals:write"))]
DealsDelete = Annotated[Principal, Depends(require("deals:delete"))]
DealsImport = Annotated[Principal, Depends(require("deals:import"))]
DealsAdmin = Annotated[Principal, Depends(require("deals:admin"))]
