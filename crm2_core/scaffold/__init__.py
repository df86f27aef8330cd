"""``crm2 plugins new NAME``: a separately installable plugin with every room of deals'.

The template (``template/``) is a complete plugin around one record kind,
``item`` — manifest, settings, a model with money and its first migration on
the plugin's own branch, schemas, repository, service, routes with
permissions, two event types, a handler that publishes, an SSE channel,
``crm2_resolve_entity``, seeds, a README and tests on the testing kit — that
passes its own tests and ``crm2 migrate`` right after ``pip install -e``
(``tests/test_plugins_new.py`` runs exactly that).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path

from crm2_core.errors import ConfigurationError
from crm2_hookspecs import ENTRY_POINT_GROUP
from crm2_hookspecs.records import PLUGIN_NAME_PATTERN

TEMPLATE = Path(__file__).parent / "template"
TAKEN = {"core", "auth", "events", "streams", "metrics", "tracing", "api", "plugins"}


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _destination(relative: Path, name: str, stamp: str) -> Path:
    parts = [f"crm2_{name}" if part == "pkg" else part for part in relative.parts]
    last = parts[-1].removesuffix(".tmpl")
    if last == "REVISION.py":
        last = f"{stamp}_{name}_create_item.py"
    elif last == "test_NAME.py":
        last = f"test_{name}.py"
    return Path(*parts[:-1], last)


def new_plugin(name: str, target: Path, *, title: str | None = None) -> list[Path]:
    """Write plugin ``name`` into ``target`` (which must not exist or be empty); the files."""
    if not PLUGIN_NAME_PATTERN.match(name) or name in TAKEN:
        raise ConfigurationError(
            f"{name!r} cannot be a plugin name: use lower case letters, digits and _, "
            f"starting with a letter ({PLUGIN_NAME_PATTERN.pattern}), and none of "
            f"{', '.join(sorted(TAKEN))}"
        )
    installed = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name in installed:
        dist = installed[name].dist
        raise ConfigurationError(
            f"a plugin named {name} is installed already"
            f"{f' ({dist.name})' if dist is not None else ''}: choose another name "
            "(installing a second would replace it or clash with it)"
        )
    if target.exists() and any(target.iterdir()):
        raise ConfigurationError(f"{target} exists and is not empty: choose another --dir")
    now = datetime.now(UTC)
    values = {
        "{{name}}": name,
        "{{Name}}": _camel(name),
        "{{NAME}}": name.upper(),
        "{{dist}}": f"crm2-{name.replace('_', '-')}",
        "{{title}}": title or name.replace("_", " ").title(),
        "{{revision}}": uuid.uuid4().hex[:12],
        "{{created}}": now.isoformat(timespec="seconds"),
    }
    written = []
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        text = source.read_text(encoding="utf-8")
        for token, value in values.items():
            text = text.replace(token, value)
        path = target / _destination(
            source.relative_to(TEMPLATE), name, now.strftime("%Y-%m-%d-%H%M")
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
