"""The targets of this deployment: the built-in ones and every plugin's ``crm2_backup_targets``."""

from __future__ import annotations

import re
from typing import Any

from crm2_backup.config import BackupSettings
from crm2_backup.errors import UnknownTarget

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def all_targets(context: Any) -> dict[str, Any]:
    """Every target by name, in hook order (crm2's database first)."""
    found: dict[str, Any] = {}
    for plugin, target in context.plugins.collect("crm2_backup_targets", context=context):
        name = getattr(target, "name", "")
        if not NAME.match(str(name)):
            raise UnknownTarget(f"{plugin} returned a target with a bad name {name!r}")
        for method in ("dump", "restore", "drill"):
            if not callable(getattr(target, method, None)):
                raise UnknownTarget(f"{plugin}'s target {name!r} has no {method}()")
        if name in found:
            raise UnknownTarget(f"two targets are called {name!r}")
        found[name] = target
    return found


def chosen_targets(context: Any) -> dict[str, Any]:
    """The targets ``CRM2_BACKUP_TARGETS`` asks for (all of them for ``auto``)."""
    everything = all_targets(context)
    settings: BackupSettings = context.plugin_settings("backup")
    wanted = settings.target_names()
    if wanted is None:
        return everything
    missing = [n for n in wanted if n not in everything]
    if missing:
        raise UnknownTarget(
            f"CRM2_BACKUP_TARGETS names {missing}; this deployment has {sorted(everything)}"
        )
    return {n: everything[n] for n in wanted}


def target(context: Any, name: str) -> Any:
    everything = all_targets(context)
    if name not in everything:
        raise UnknownTarget(f"no target {name!r}; this deployment has {sorted(everything)}")
    return everything[name]
