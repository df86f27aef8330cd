"""Hello's settings (``CRM2_HELLO_*``), validated by the core before any hook runs."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HelloSettings(BaseSettings):
    # The core refuses a settings model whose prefix is not CRM2_<NAME>_.
    model_config = SettingsConfigDict(env_prefix="CRM2_HELLO_", env_file=".env", extra="ignore")

    greeting: str = Field(
        "Hello", min_length=1, max_length=40, description="the word a new greeting starts with"
    )
