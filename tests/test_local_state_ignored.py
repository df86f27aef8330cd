"""What crm2 writes where it runs, by default, stays out of git and out of a Docker build.

A `crm2 serve` started in a checkout writes its SQLite database, the documents'
local files and the backup plugin's sets and their key (its first scheduled
backup runs at start when the last one is overdue) into the working directory:
``git add -A`` must not pick the key up, nor a ``docker build`` of the checkout
take it into its context (the Dockerfile's build stage copies ``.``). The paths
are env.example's defaults, so a new default shows up here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WRITTEN_WHERE_CRM2_RUNS = (
    "CRM2_DATABASE_URL",
    "CRM2_DOCUMENTS_LOCAL_ROOT",
    "CRM2_BACKUP_DIR",
    "CRM2_BACKUP_KEY_FILE",
)


def _default_paths() -> dict[str, str]:
    text = (ROOT / "env.example").read_text()
    found = {}
    for name in WRITTEN_WHERE_CRM2_RUNS:
        match = re.search(rf"^{name}=(.+)$", text, re.MULTILINE)
        assert match, f"{name} has no default in env.example"
        value = match.group(1).strip()
        value = value.split(":///", 1)[-1]  # a SQLite URL's file
        found[name] = value.removeprefix("./")
    return found


def test_the_defaults_are_ignored_by_git() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for name, path in _default_paths().items():
        # the file itself, or a file inside the directory
        probe = path if "." in Path(path).name else f"{path}/x"
        checked = subprocess.run(
            [git, "check-ignore", "--no-index", "-q", probe], cwd=ROOT, check=False
        )
        assert checked.returncode == 0, f"{probe} ({name}'s default) is not in .gitignore"


def test_the_defaults_stay_out_of_a_docker_build() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        parts = Path(path).parts
        # a pattern matching the path or a directory it is in
        return any(
            Path(*parts[: n + 1]).match(pattern) for pattern in patterns for n in range(len(parts))
        )

    for name, path in _default_paths().items():
        assert ignored(path), f"{path} ({name}'s default) is not in .dockerignore"
