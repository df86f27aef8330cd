"""Where completed sets are kept besides the local staging folder: ``CRM2_BACKUP_DESTINATION``.

``local`` (the default) keeps a set only in ``CRM2_BACKUP_DIR``. Any other name is
a destination another plugin returns from the ``crm2_backup_destinations`` hook
(documents: ``documents:<backend>``, one per storage backend), duck-typed: a
``name`` and three coroutines taking a relative name ``<set location>/<file>``:
``put(name, path)`` stores the file at ``path``, ``get(name, path)`` writes it
back to ``path`` (``FileNotFoundError`` when it is not there) and
``delete(name)``. Backup imports nothing of the plugin that provides one.

A set is still written into ``CRM2_BACKUP_DIR`` first (the staging area); once
its manifest is written every file is copied to the destination, and the
manifest records the destination's name (``destination``). Drills and restores
read a file from the destination when the local copy is gone; retention deletes
a pruned set's files there too. Backends cannot list, so a set's files are
those its manifest names (its artefacts and ``manifest.json``): the manifest is
therefore recorded in the set's row *before* the first file is copied, so that
whoever fails the set (a failed upload, the stale sweep, a run that finishes after
the sweep) can delete what already reached the destination (:func:`discard`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from crm2_backup.config import BackupSettings
from crm2_backup.errors import UnknownDestination
from crm2_backup.models import BackupSet

LOCAL = "local"
HOOK = "crm2_backup_destinations"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}(:[a-z0-9][a-z0-9_.-]{0,63})?$")
MANIFEST = "manifest.json"
log = logging.getLogger("crm2.backup")


def all_destinations(context: Any) -> dict[str, Any]:
    """Every destination a plugin offers, by name (``local`` is not among them: it is built in)."""
    found: dict[str, Any] = {}
    for plugin, destination in context.plugins.collect(HOOK, context=context):
        name = str(getattr(destination, "name", ""))
        if not NAME.match(name) or name == LOCAL:
            raise UnknownDestination(f"{plugin} returned a destination with a bad name {name!r}")
        for method in ("put", "get", "delete"):
            if not callable(getattr(destination, method, None)):
                raise UnknownDestination(f"{plugin}'s destination {name!r} has no {method}()")
        if name in found:
            raise UnknownDestination(f"two destinations are called {name!r}")
        found[name] = destination
    return found


def destination(context: Any, name: str) -> Any | None:
    """The destination called ``name``; ``None`` for ``local``; UnknownDestination when none is."""
    if name == LOCAL:
        return None
    everything = all_destinations(context)
    if name not in everything:
        raise UnknownDestination(
            f"CRM2_BACKUP_DESTINATION is {name!r}, but this deployment offers "
            f"{[LOCAL, *sorted(everything)]}: set one of those (documents:<backend> needs the "
            "documents plugin enabled and that storage backend configured)"
        )
    return everything[name]


def configured(context: Any) -> Any | None:
    """The destination ``CRM2_BACKUP_DESTINATION`` names (``None``: local only)."""
    settings: BackupSettings = context.plugin_settings("backup")
    return destination(context, settings.destination.strip() or LOCAL)


def of_set(context: Any, row: BackupSet) -> Any | None:
    """The destination ``row`` was copied to (``None``: local only, or an older set)."""
    return destination(context, str((row.manifest or {}).get("destination") or LOCAL))


def files_of(row: BackupSet) -> list[str]:
    """The files of a set, as its manifest names them: artefacts, then the manifest."""
    return [str(a["file"]) for a in (row.manifest or {}).get("artifacts", [])] + [MANIFEST]


async def upload(target: Any, location: str, folder: Path, files: list[str]) -> None:
    """Copy ``files`` of the set in ``folder`` to ``target``: artefacts first, manifest last."""
    for filename in files:
        await target.put(f"{location}/{filename}", folder / filename)


async def fetch(target: Any, location: str, filename: str, path: Path) -> Path:
    """The set's ``filename`` from ``target`` into ``path``."""
    await target.get(f"{location}/{filename}", path)
    return path


async def delete(target: Any, location: str, files: list[str]) -> None:
    """Remove the set's ``files`` from ``target`` (missing ones are not an error)."""
    for filename in files:
        await target.delete(f"{location}/{filename}")


async def discard(context: Any, row: BackupSet) -> None:
    """Delete a failed set's files from the destination its recorded manifest names.

    A failed set is never drilled, restored or pruned, so a copy left there would hold
    space (and a set nobody can use) for ever. Missing files are not an error (a run
    stopped before copying them); a destination that cannot be reached or is no longer
    offered is logged, not raised: the set is failed either way.
    """
    name = str((row.manifest or {}).get("destination") or LOCAL)
    if name == LOCAL:
        return
    try:
        target = destination(context, name)
        if target is not None:
            await delete(target, row.location, files_of(row))
    except Exception as exc:  # reported, not raised: the failure it cleans up stands
        log.warning(
            "backup: files of failed set %s not deleted from %s: %s: %s",
            row.id,
            name,
            type(exc).__name__,
            getattr(exc, "detail", None) or exc,
        )
