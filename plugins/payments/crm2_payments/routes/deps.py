"""Permission dependencies and the Idempotency-Key every POST that moves money needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from crm2_core.api import Permissions, require
from crm2_hookspecs import Principal
from crm2_payments.errors import IdempotencyKeyRequired

PaymentsRead = Annotated[Principal, Depends(require("payments:read"))]
PaymentsWrite = Annotated[Principal, Depends(require("payments:write"))]
PaymentsExport = Annotated[Principal, Depends(require("payments:export"))]
PaymentsReconcile = Annotated[Principal, Depends(require("payments:reconcile"))]
PaymentsAdmin = Annotated[Principal, Depends(require("payments:admin"))]
PERMISSIONS = Permissions(read="payments:read", write="payments:write", delete="payments:admin")


async def idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            description="required: a retry with the same key answers the first response",
        ),
    ] = None,
) -> str:
    """The core's middleware makes the key work; money routes refuse to run without one."""
    if not idempotency_key:
        raise IdempotencyKeyRequired(
            "send an Idempotency-Key header with every POST that moves money"
        )
    return idempotency_key


MoneyKey = Annotated[str, Depends(idempotency_key)]
