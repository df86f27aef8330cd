"""Where sets live: ``<CRM2_BACKUP_DIR>/<started>-<set id>/``, artefacts and manifest.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from crm2_backup.config import BackupSettings
from crm2_backup.errors import SetNotRestorable


def root(settings: BackupSettings) -> Path:
    return Path(settings.dir)


def set_dir(settings: BackupSettings, location: str) -> Path:
    folder = (root(settings) / location).resolve()
    if root(settings).resolve() not in folder.parents:
        raise SetNotRestorable(f"set location {location!r} is outside {settings.dir}")
    return folder


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    temporary = folder / "manifest.json.tmp"
    temporary.write_text(
        json.dumps(manifest, indent=2, sort_keys=True, default=str), encoding="utf-8"
    )
    temporary.replace(folder / "manifest.json")


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
