"""Console settings (``CRM2_CONSOLE_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGED_BUILD = Path(__file__).resolve().parent / "static"


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM2_CONSOLE_", env_file=".env", extra="ignore")

    dist_dir: str = Field(
        "",
        description="folder of the console's static build; empty: the copy inside the package",
    )

    def build_dir(self) -> Path:
        return Path(self.dist_dir) if self.dist_dir else PACKAGED_BUILD
