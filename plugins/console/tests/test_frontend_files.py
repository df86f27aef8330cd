"""What frontend/ commits: exact versions, and a lock file that names no registry host."""

from __future__ import annotations

import json
import re

from console_e2e import FRONTEND

EXACT = re.compile(r"^\d+\.\d+\.\d+$")


def test_package_json_pins_every_dependency_exactly() -> None:
    package = json.loads((FRONTEND / "package.json").read_text())
    loose = {
        name: version
        for group in ("dependencies", "devDependencies")
        for name, version in package.get(group, {}).items()
        if not EXACT.match(version)
    }
    assert not loose, f"pin exact versions in frontend/package.json: {loose}"


def test_the_lock_file_records_no_download_url() -> None:
    lock_path = FRONTEND / "package-lock.json"
    text = lock_path.read_text()
    lock = json.loads(text)
    with_url = [name for name, entry in lock["packages"].items() if "resolved" in entry]
    assert not with_url, f"strip 'resolved' from {lock_path.name} (dev.py does): {with_url[:5]}"
    assert "://" not in text, "package-lock.json must name no registry host"
    assert (
        lock["packages"][""]["dependencies"]
        == json.loads((FRONTEND / "package.json").read_text())["dependencies"]
    ), "package-lock.json is out of step with package.json: run dev.py"
