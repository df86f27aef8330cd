"""Documents settings (``CRM2_DOCUMENTS_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DocumentsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM2_DOCUMENTS_", env_file=".env", extra="ignore")

    backend: str = Field(
        "local",
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="storage backend new versions end up on (local, s3, gdrive or a plugin's)",
    )
    upload_backend: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="backend uploads are written to first; when it differs from "
        "CRM2_DOCUMENTS_BACKEND the transfer queue moves them (unset = the same)",
    )
    local_root: str = Field(
        "./var/documents", description="root directory of the local backend (created if missing)"
    )
    max_upload_bytes: int = Field(
        26_214_400, ge=1, description="largest file accepted, in bytes (413 above, nothing kept)"
    )
    retention_days: int = Field(
        30, ge=0, le=3650, description="days a deleted document can be restored before purge"
    )
    purge_interval_seconds: int = Field(
        3600, ge=10, le=86_400, description="how often deleted documents past retention are purged"
    )
    purge_batch: int = Field(200, ge=1, le=10_000, description="documents purged per run")
    signing_key: SecretStr | None = Field(
        None,
        description="HMAC key of signed download URLs (32+ bytes); unset = derived from "
        "CRM2_AUTH_JWT_SECRET",
    )
    signed_url_max_seconds: int = Field(
        3600, ge=10, le=86_400, description="longest lifetime a signed URL may ask for"
    )
    transfer_interval_seconds: int = Field(
        30, ge=1, le=3600, description="how often the transfer queue moves waiting versions"
    )
    transfer_batch: int = Field(20, ge=1, le=1000, description="versions moved per queue run")
    transfer_max_attempts: int = Field(
        5, ge=1, le=100, description="tries per transfer before it is marked failed"
    )
    # -- s3 -------------------------------------------------------------------------
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (https://…); unset = no s3 backend"
    )
    s3_bucket: str = Field("crm2-documents", description="bucket of the s3 backend")
    s3_region: str = Field("us-east-1", description="region of the s3 backend")
    s3_access_key_id: str | None = Field(None, description="access key of the s3 backend")
    s3_secret_access_key: SecretStr | None = Field(None, description="secret key of the s3 backend")
    s3_prefix: str = Field("documents/", description="key prefix inside the bucket")
    s3_multipart_threshold: int = Field(
        8_388_608,
        ge=5_242_880,
        description="files larger than this go up as S3 multipart uploads (parts of this size)",
    )
