"""Permission dependencies, declared once for the plugin's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from crm2_core.api import require
from crm2_hookspecs import Principal

TasksRead = Annotated[Principal, Depends(require("tasks:read"))]
TasksWrite = Annotated[Principal, Depends(require("tasks:write"))]
TasksDelete = Annotated[Principal, Depends(require("tasks:delete"))]
TasksAdmin = Annotated[Principal, Depends(require("tasks:admin"))]
