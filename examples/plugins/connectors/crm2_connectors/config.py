"""The connectors plugin's settings (``CRM2_CONNECTORS_*``); README.md lists them."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConnectorsSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CRM2_CONNECTORS_", env_file=".env", extra="ignore"
    )

    chat_webhook_url: str = Field(
        "",
        description="a Slack-compatible incoming-webhook URL (Slack, Mattermost, Rocket.Chat);"
        " empty: the chat channel is off",
    )
    chat_username: str = Field("crm2", max_length=80, description="the name messages are posted as")
    chat_timeout_seconds: float = Field(10.0, gt=0, le=120)
    webdav_url: str = Field(
        "",
        description="the WebDAV collection files are kept in (http(s)://host/dav/crm2/);"
        " empty: no webdav backend",
    )
    webdav_username: str = ""
    webdav_password: SecretStr = SecretStr("")
    webdav_timeout_seconds: float = Field(60.0, gt=0, le=600)
