"""Shared readers for the infra tests: settings the code declares, env.example, YAML files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from crm2_core.plugins.discovery import discover_builtin, discover_installed
from crm2_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
SETTING = re.compile(r"^#?\s*(CRM2_[A-Z0-9_]+)=")


def settings_models() -> dict[str, type[BaseSettings]]:
    """The core's settings and every installed plugin's (built-in ones included)."""
    models: dict[str, type[BaseSettings]] = {"core": Settings}
    for plugin in [*discover_builtin(), *discover_installed().values()]:
        if plugin.manifest is not None and plugin.manifest.settings is not None:
            models[plugin.name] = plugin.manifest.settings
    return models


def env_name(model: type[BaseSettings], field: str) -> str:
    return f"{model.model_config.get('env_prefix', '')}{field}".upper()


def must_be_given(model: type[BaseSettings]) -> list[str]:
    """Settings a production deployment must set: required fields and secrets."""
    names = []
    for name, info in model.model_fields.items():
        required = info.default is PydanticUndefined and info.default_factory is None
        secret = "SecretStr" in str(info.annotation) or info.annotation is SecretStr
        if required or secret:
            names.append(env_name(model, name))
    return names


def env_example_settings() -> set[str]:
    found = set()
    for line in (ROOT / "env.example").read_text().splitlines():
        match = SETTING.match(line.strip())
        if match:
            found.add(match[1])
    return found


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kustomize(path: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` output (kubectl ships kustomize); the test skips without it."""
    import pytest

    kubectl = shutil.which("kubectl")
    kustomize_bin = shutil.which("kustomize")
    if kubectl:
        command = [kubectl, "kustomize", str(path)]
    elif kustomize_bin:
        command = [kustomize_bin, "build", str(path)]
    else:
        pytest.skip("neither kubectl nor kustomize is installed")
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
    return load_yaml_documents(out.stdout)


def vendored_schema(name: str) -> dict[str, Any]:
    """A JSON schema check-jsonschema keeps in its wheel (no network)."""
    text = files("check_jsonschema.builtin_schemas.vendor").joinpath(name).read_text()
    return dict(json.loads(text))


def plugins_with_queues() -> list[str]:
    """Every installed plugin with event handlers, i.e. with a broker queue of its own."""
    from crm2_core.events.bus import collect_handlers
    from crm2_core.plugins import build_plugin_manager
    from crm2_core.settings import Settings

    names = [p.name for p in discover_installed().values() if p.error is None]
    builtin = {p.name for p in discover_builtin()}
    settings = Settings(_env_file=None, plugins=",".join(names))  # type: ignore[call-arg]
    registry = build_plugin_manager(settings)

    class _Context:
        state: dict[str, Any] = {}

        def __init__(self) -> None:
            self.settings = settings
            self.plugins = registry

        def plugin_settings(self, name: str) -> Any:
            return registry.settings_for(name)

        def is_enabled(self, name: str) -> bool:
            return registry.is_enabled(name)

    handlers = collect_handlers(registry, _Context())
    return [p for p in handlers.plugins if p not in builtin]
