"""The plugin's declared dependencies admit only versions its code and tests work with.

``upload.py`` imports ``python_multipart`` (the module name since python-multipart
0.0.13; before it was ``multipart``, and 0.0.9 would fail at import). The floor is the
version the suite runs against, never below what the code can import.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _floor(name: str) -> Version:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (requirement,) = [Requirement(d) for d in dependencies if Requirement(d).name == name]
    (floor,) = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    return floor


def test_the_multipart_floor_is_a_tested_version() -> None:
    floor = _floor("python-multipart")
    assert floor >= Version("0.0.34"), f"python-multipart>={floor}: below the tested 0.0.34"
    assert Version(version("python-multipart")) >= floor
