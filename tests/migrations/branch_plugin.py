"""A test plugin of its own Alembic branch: some models and the folder of its revisions.

What ``crm2 makemigrations`` writes and ``crm2 migrate`` runs for a plugin, without
installing one: each test module names its plugin and declares its tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crm2_hookspecs import PluginManifest, hookimpl


class BranchPlugin:
    def __init__(self, name: str, versions: Path, models: Sequence[type]) -> None:
        self.manifest = PluginManifest(name=name, title=f"{name} (test plugin)")
        self.versions = versions
        self.models = models

    @hookimpl
    def crm2_models(self) -> Sequence[type]:
        return self.models

    @hookimpl
    def crm2_migrations(self) -> Path:
        return self.versions
