"""Permission dependencies, declared once for the plugin's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from crm2_core.api import require
from crm2_hookspecs import Principal

DocumentsRead = Annotated[Principal, Depends(require("documents:read"))]
DocumentsWrite = Annotated[Principal, Depends(require("documents:write"))]
DocumentsDelete = Annotated[Principal, Depends(require("documents:delete"))]
DocumentsAdmin = Annotated[Principal, Depends(require("documents:admin"))]
