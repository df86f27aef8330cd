"""dev.py's console steps: one line when Node.js is missing, URL-free lock files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from console_e2e import ROOT


def load_dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crm2_dev", ROOT / "dev.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_node_the_build_is_skipped_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = load_dev()
    monkeypatch.setattr(dev.shutil, "which", lambda name: None)

    assert dev.build_console() is False

    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "skipped" in out and "Node.js" in out


def test_strip_lock_urls_drops_every_url(tmp_path: Path) -> None:
    lock = tmp_path / "package-lock.json"
    lock.write_text(
        json.dumps(
            {
                "lockfileVersion": 3,
                "packages": {
                    "": {"name": "x", "dependencies": {"a": "1.0.0"}},
                    "node_modules/a": {
                        "version": "1.0.0",
                        "resolved": "https://registry.example/a/-/a-1.0.0.tgz",
                        "integrity": "sha512-abc",
                        "funding": {"url": "https://fund.example/a"},
                    },
                },
            }
        )
    )

    load_dev().strip_lock_urls(lock)

    text = lock.read_text()
    assert "://" not in text
    assert json.loads(text)["packages"]["node_modules/a"] == {
        "version": "1.0.0",
        "integrity": "sha512-abc",
    }
