"""Where crm2-core's Alembic environment lives; light enough to import at start-up.

``crm2_core.migrate`` imports Alembic only inside the functions that run it;
``crm2 serve`` checks the version tables without it.
"""

from __future__ import annotations

from pathlib import Path

from crm2_core.errors import ConfigurationError

PACKAGE_DIR = Path(__file__).resolve().parent


def environment_dir() -> Path:
    """The Alembic environment: inside the wheel, or at the top of a source checkout."""
    for candidate in (PACKAGE_DIR / "migrations", PACKAGE_DIR.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ConfigurationError("crm2-core's migrations folder is missing: reinstall crm2-core")
