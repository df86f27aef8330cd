"""What the installed code knows of the schema: every plugin's Alembic revisions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REVISION = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*['\"]([0-9A-Za-z_]+)['\"]", re.MULTILINE)


def known_revisions(context: Any) -> set[str]:
    """Revision ids of every enabled plugin's migrations (the core's too)."""
    known: set[str] = set()
    for _plugin, folder in context.plugins.call("crm2_migrations"):
        for file in Path(folder).glob("*.py"):
            known.update(REVISION.findall(file.read_text(encoding="utf-8")))
    return known


def alembic_heads(facts: dict[str, Any]) -> dict[str, list[str]]:
    """``{version table: [revisions]}`` from a database target's facts."""
    return {
        key.removeprefix("alembic."): list(value)
        for key, value in facts.items()
        if key.startswith("alembic.")
    }


def unknown_heads(heads: dict[str, list[str]], known: set[str]) -> list[str]:
    return sorted(
        f"{table}={rev}" for table, revs in heads.items() for rev in revs if rev not in known
    )
