"""What the installed code knows of the schema: every plugin's Alembic revisions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REVISION = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*['\"]([0-9A-Za-z_]+)['\"]", re.MULTILINE)


def known_revisions(context: Any) -> dict[str, set[str]]:
    """``{version table: revision ids}`` of every enabled plugin's migrations (the core's too)."""
    known: dict[str, set[str]] = {}
    for plugin, folder in context.plugins.call("crm2_migrations"):
        revisions = known.setdefault(f"alembic_version_{plugin}", set())
        for file in Path(folder).glob("*.py"):
            revisions.update(REVISION.findall(file.read_text(encoding="utf-8")))
    return known


def alembic_heads(facts: dict[str, Any]) -> dict[str, list[str]]:
    """``{version table: [revisions]}`` from a database target's facts."""
    return {
        key.removeprefix("alembic."): list(value)
        for key, value in facts.items()
        if key.startswith("alembic.")
    }


def unknown_heads(heads: dict[str, list[str]], known: dict[str, set[str]]) -> list[str]:
    """Revisions of enabled plugins' branches that this code does not have.

    A disabled plugin's version table (its data is kept while it is off) says
    nothing about the code here: it is restored as it is, not judged.
    """
    return sorted(
        f"{table}={rev}"
        for table, revs in heads.items()
        if table in known
        for rev in revs
        if rev not in known[table]
    )
