"""Documents settings (``CRM2_DOCUMENTS_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SIGNING_KEY_BYTES = 32  # as an HMAC key of the auth layer's tokens
MIN_TOKEN_KEY_CHARACTERS = 32  # what the setting's documentation has always asked for


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
    orphan_grace_seconds: int = Field(
        86_400,
        ge=600,
        le=30 * 86_400,
        description="age after which a stored file no version names is an orphan the sweep "
        "removes (longer than any upload takes to commit)",
    )
    orphan_sweep_interval_seconds: int = Field(
        86_400,
        ge=60,
        le=7 * 86_400,
        description="how often the backends are swept for orphan files",
    )
    signing_key: SecretStr | None = Field(
        None,
        description="HMAC key of signed download URLs (32+ bytes); unset = derived from "
        "CRM2_AUTH_JWT_SECRET (required when auth signs with a private key; in development "
        "derived from CRM2_AUTH_JWT_PRIVATE_KEY_FILE then)",
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
    # -- gdrive -----------------------------------------------------------------------
    gdrive_client_id: str | None = Field(
        None, description="OAuth client id of the gdrive backend; unset = no gdrive backend"
    )
    gdrive_client_secret: SecretStr | None = Field(
        None, description="OAuth client secret of the gdrive backend"
    )
    gdrive_redirect_url: str = Field(
        "http://127.0.0.1:8000/api/v1/documents/oauth/gdrive/callback",
        description="the OAuth callback URL as registered with Google (this API's "
        "/api/v1/documents/oauth/gdrive/callback)",
    )
    gdrive_token_key: SecretStr | None = Field(
        None,
        description="key that encrypts the Drive refresh token at rest (any 32+ random "
        "characters); required with CRM2_DOCUMENTS_GDRIVE_CLIENT_ID",
        validate_default=True,  # unset with a client id set is the error to catch
    )
    gdrive_auth_url: str = Field(
        "https://accounts.google.com/o/oauth2/v2/auth", description="Google's consent page"
    )
    gdrive_token_url: str = Field(
        "https://oauth2.googleapis.com/token", description="Google's OAuth token endpoint"
    )
    gdrive_api_url: str = Field(
        "https://www.googleapis.com", description="base URL of the Drive REST v3 API"
    )
    gdrive_folder: str = Field(
        "crm2-documents", description="name of the Drive folder the backend keeps files in"
    )
    gdrive_chunk_bytes: int = Field(
        8_388_608,
        ge=262_144,
        description="resumable upload chunk size (a multiple of 256 KiB), bytes",
    )

    @field_validator("signing_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SIGNING_KEY_BYTES:
            raise ValueError(
                f"the signing key must be at least {MIN_SIGNING_KEY_BYTES} bytes "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
                "or unset to derive it from CRM2_AUTH_JWT_SECRET"
            )
        return value

    @field_validator("gdrive_token_key")
    @classmethod
    def _token_key_with_client_id(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        """Checked here, so that start-up refuses it: found at the first consent, it
        would be an error no client can do anything about."""
        if not info.data.get("gdrive_client_id"):
            return value
        if value is None or len(value.get_secret_value()) < MIN_TOKEN_KEY_CHARACTERS:
            raise ValueError(
                f"required with CRM2_DOCUMENTS_GDRIVE_CLIENT_ID: at least "
                f"{MIN_TOKEN_KEY_CHARACTERS} random characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value
