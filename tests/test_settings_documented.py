"""env.example and the code agree on every setting, in both directions.

The code side is the core's ``Settings`` plus the settings model of every
plugin the core can see (the built-in ones and every ``crm2.plugins`` entry
point installed here). Example plugins under ``examples/`` document their
settings in their own README, not in env.example.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from crm2_core.plugins.discovery import discover_builtin, discover_installed
from crm2_core.settings import Settings
from crm2_hookspecs import ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = ROOT / "env.example"
# `KEY=value` or `# KEY=value` (an unset setting shown with its example).
SETTING_LINE = re.compile(r"^(?P<unset>#\s*)?(?P<key>CRM2_[A-Z0-9_]+)=(?P<value>.*)$")


@dataclass(frozen=True)
class CodeSetting:
    env_name: str
    owner: str
    field: FieldInfo


@dataclass(frozen=True)
class ExampleLine:
    key: str
    value: str
    unset: bool
    line_no: int
    previous: str


def _example_plugin_names() -> set[str]:
    """Entry-point names declared by the example plugins shipped under examples/."""
    names: set[str] = set()
    for pyproject in ROOT.glob("examples/plugins/*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        names |= set(project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {}))
    return names


def _settings_models() -> dict[str, type[BaseSettings]]:
    models: dict[str, type[BaseSettings]] = {"core": Settings}
    skip = _example_plugin_names()
    plugins = [*discover_builtin(), *discover_installed().values()]
    for plugin in plugins:
        if plugin.name in skip or plugin.manifest is None or plugin.manifest.settings is None:
            continue
        models[plugin.name] = plugin.manifest.settings
    return models


def _env_name(model: type[BaseSettings], name: str, field: FieldInfo) -> str:
    if isinstance(field.validation_alias, str):
        return field.validation_alias.upper()
    return f"{model.model_config.get('env_prefix', '')}{name}".upper()


def code_settings() -> dict[str, CodeSetting]:
    found: dict[str, CodeSetting] = {}
    for owner, model in _settings_models().items():
        for name, field in model.model_fields.items():
            env_name = _env_name(model, name, field)
            found[env_name] = CodeSetting(env_name, f"{owner} ({model.__name__}.{name})", field)
    return found


def example_lines() -> list[ExampleLine]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        match = SETTING_LINE.match(line.strip())
        if match:
            found.append(
                ExampleLine(
                    key=match["key"],
                    value=match["value"],
                    unset=bool(match["unset"]),
                    line_no=i + 1,
                    previous=lines[i - 1].strip() if i > 0 else "",
                )
            )
    return found


def test_every_setting_the_code_reads_is_in_env_example() -> None:
    documented = {line.key for line in example_lines()}
    missing = [
        f"{s.env_name}  <- {s.owner}"
        for s in code_settings().values()
        if s.env_name not in documented
    ]
    assert not missing, (
        "add these to env.example (a comment line, then KEY=default):\n"
        + "\n".join(sorted(missing))
    )


def test_env_example_lists_only_settings_the_code_reads() -> None:
    known = code_settings()
    unknown = [
        f"line {line.line_no}: {line.key}" for line in example_lines() if line.key not in known
    ]
    assert not unknown, "env.example names settings no code reads:\n" + "\n".join(unknown)


def test_env_example_lists_each_setting_once() -> None:
    seen: dict[str, int] = {}
    repeated = []
    for line in example_lines():
        if line.key in seen:
            repeated.append(f"{line.key} on lines {seen[line.key]} and {line.line_no}")
        seen.setdefault(line.key, line.line_no)
    assert not repeated, "\n".join(repeated)


def test_every_env_example_setting_has_a_comment_line_above_it() -> None:
    bare = [
        f"line {line.line_no}: {line.key}"
        for line in example_lines()
        if not line.previous.startswith("#") or SETTING_LINE.match(line.previous)
    ]
    assert not bare, "each setting needs a one-line '# description' right above it:\n" + "\n".join(
        bare
    )


def test_every_setting_field_has_a_description() -> None:
    undescribed = [
        s.owner for s in code_settings().values() if not (s.field.description or "").strip()
    ]
    assert not undescribed, "give these Field(..., description=...):\n" + "\n".join(undescribed)


def _parsed(field: FieldInfo, raw: str) -> Any:
    return TypeAdapter(field.annotation).validate_python(raw)


def test_env_example_values_are_the_defaults() -> None:
    """A set line shows the default; an unset (`# KEY=`) line stands for a default of None.

    Secrets are the exception: env.example carries a demo value that only
    development accepts.
    """
    known = code_settings()
    wrong = []
    for line in example_lines():
        setting = known.get(line.key)
        if setting is None:
            continue
        field = setting.field
        default = field.get_default(call_default_factory=True)
        if line.unset:
            if default is not None:
                wrong.append(f"{line.key}: commented out but its default is {default!r}")
            continue
        if field.annotation is SecretStr or "SecretStr" in str(field.annotation):
            continue
        try:
            value = _parsed(field, line.value)
        except ValueError as exc:
            wrong.append(f"{line.key}={line.value}: not a valid value ({exc})")
            continue
        if value != default:
            wrong.append(f"{line.key}={line.value}: the code's default is {default!r}")
    assert not wrong, "\n".join(wrong)
