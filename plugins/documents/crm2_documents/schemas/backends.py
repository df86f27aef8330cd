"""What ``GET /backends`` shows an administrator: the storage backends and what waits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from crm2_core.api import ResponseModel


class StorageBackendStatus(ResponseModel):
    name: str
    ok: bool = Field(description="whether the backend answered")
    detail: dict[str, Any] = Field(description="what it reports (no secrets), or the error")


class PurgeBlocked(ResponseModel):
    backend: str = Field(description="a backend that is not configured (removed, renamed)")
    documents: int = Field(description="deleted documents past retention with a file on it")


class StorageStatus(ResponseModel):
    target: str = Field(description="where files end up (CRM2_DOCUMENTS_BACKEND)")
    upload: str = Field(description="where uploads land first (CRM2_DOCUMENTS_UPLOAD_BACKEND)")
    backends: list[StorageBackendStatus]
    purge_blocked: list[PurgeBlocked] = Field(
        description="documents the purge cannot remove until these backends are configured"
        " again (their files cannot be deleted); empty when nothing waits"
    )


class GdriveConsent(ResponseModel):
    url: str = Field(description="Google's consent page: open it in a browser")
    state: str = Field(description="the one-time state the callback must bring back")


class GdriveStatus(ResponseModel):
    connected: bool = Field(description="whether a refresh token is stored")
    connected_at: datetime | None = Field(description="when an admin last connected Drive")
    revoked_at: datetime | None = Field(description="when Google last refused the token")
