"""The direction of imports between crm2_core's packages: no cycles, lower layers first.

A package may import its own layer and the layers below it, never one above.
The core's default plugins sit above the HTTP shell they build on (auth, then
streams); the app context and its bootstrap sit below everything that runs,
so the CLI and ``crm2 worker`` build the application without the web layer
(only ``crm2 serve`` and ``crm2 openapi`` import ``crm2_core.http.app``).

Imports inside functions count; imports under ``if TYPE_CHECKING:`` do not
(they never run: annotations may name any layer).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. "(root)" is crm2_core/__init__.py (the version).
LAYERS: list[set[str]] = [
    {
        "(root)",
        "errors",
        "networks",
        "settings",
        "schemas",
        "money",
        "migration_paths",
        "db",
        "sse_audience",  # the contract between the kit's visibility rules and the streams
        "redis_guard",  # every core call to Redis, bounded in time (no crm2_core import)
    },
    {"plugins"},
    {"context"},
    {"observability"},  # logs, metrics, tracing: what every layer above reports through
    {"bootstrap", "migrate"},
    {"scheduler", "jobs"},  # background work: scheduled jobs, and jobs a request starts
    {"events"},
    {"http"},
    {"auth"},
    {"streams"},
    # the command line (and its plugin scaffold), the resource kit, the public API, the test kit
    {"cli", "kit", "api", "testing", "observability_app", "scaffold"},  # scaffold: crm2 plugins new
]
# crm2_core.observability holds modules of two layers: the instruments (logs, metrics,
# tracing) that the events and HTTP layers report through, and what serves or wires
# them (its default plugins, /metrics, crm2 doctor). Its HTTP middleware is part of
# the HTTP shell.
OBSERVABILITY_MODULES = {
    "middleware": "http",
    "routes": "observability_app",
    "doctor": "observability_app",
    "metrics_plugin": "observability_app",
    "tracing_plugin": "observability_app",
    "worker": "observability_app",
}
# Known upward imports, each with what removes it. The tests fail once one is gone,
# so an entry cannot outlive its reason.
PENDING_EDGES: dict[tuple[str, str], str] = {
    ("crm2_core.observability.metrics", "crm2_core.events.models"): (
        "the metrics read the outbox and dead-letter tables themselves; the events "
        "package should report those gauges through a hook or the bus instead"
    ),
}
# Packages that must not reach the web layer, and the one module that may.
NO_WEB = {"cli", "events", "bootstrap", "context", "plugins", "scheduler", "migrate"}
WEB_ENTRY = {
    ("crm2_core.cli.serve", "crm2_core.http.app"),
    ("crm2_core.cli.serve", "crm2_core.http.server"),
    ("crm2_core.cli.serve", "crm2_core.http.protocol"),  # its uvicorn protocol
    ("crm2_core.cli.openapi", "crm2_core.http.app"),  # the OpenAPI document of the app
}


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in _runtime_imports(child))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def _package(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "observability":
        return OBSERVABILITY_MODULES.get(parts[2], "observability")
    return parts[1] if len(parts) > 1 else "(root)"


def core_imports(source_root: Path) -> list[tuple[str, str]]:
    """``(importing module, imported module)`` for every runtime import inside crm2_core."""
    found: list[tuple[str, str]] = []
    for file in sorted((source_root / "crm2_core").rglob("*.py")):
        parts = list(file.relative_to(source_root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        module = ".".join(parts)
        for node in _runtime_imports(ast.parse(file.read_text(), filename=str(file))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif node.level == 0 and node.module:
                targets = [node.module]
                if node.module == "crm2_core":  # from crm2_core import errors
                    targets = [
                        f"crm2_core.{alias.name}"
                        if (source_root / "crm2_core" / alias.name).exists()
                        or (source_root / "crm2_core" / f"{alias.name}.py").exists()
                        else "crm2_core"
                        for alias in node.names
                    ]
            else:
                continue
            found += [
                (module, t)
                for t in targets
                if t.split(".")[0] == "crm2_core" and (module, t) not in PENDING_EDGES
            ]
    return found


def layer_of(package: str) -> int:
    for index, layer in enumerate(LAYERS):
        if package in layer:
            return index
    raise AssertionError(
        f"crm2_core.{package} is in no layer of tests/test_package_layers.py: add it to LAYERS"
    )


def layer_violations(source_root: Path) -> list[str]:
    problems = []
    for importer, imported in core_imports(source_root):
        source, target = _package(importer), _package(imported)
        if source != target and layer_of(target) > layer_of(source):
            problems.append(
                f"{importer} imports {imported}: {source} is below {target} "
                "(move the shared piece down, or let the lower layer ask through the context)"
            )
    return problems


def web_violations(source_root: Path) -> list[str]:
    return [
        f"{importer} imports {imported}: build the context with crm2_core.bootstrap, "
        "only `crm2 serve` (crm2_core.cli.serve) builds the web app"
        for importer, imported in core_imports(source_root)
        if _package(importer) in NO_WEB
        and _package(imported) == "http"
        and (importer, imported) not in WEB_ENTRY
    ]


def package_cycles(source_root: Path) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for importer, imported in core_imports(source_root):
        source, target = _package(importer), _package(imported)
        if source != target:
            graph.setdefault(source, set()).add(target)
    cycles = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    cycles.append([*path, start])
                elif nxt not in path and nxt > start:  # report each cycle once
                    stack.append((nxt, [*path, nxt]))
    return cycles


def test_no_import_cycles_between_core_packages() -> None:
    cycles = package_cycles(ROOT)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_core_packages_import_only_their_layer_and_below() -> None:
    problems = layer_violations(ROOT)
    assert not problems, "\n".join(problems)


def test_pending_edges_still_exist() -> None:
    """Drop an entry of PENDING_EDGES once its import is gone."""
    for (importer, imported), reason in PENDING_EDGES.items():
        file = ROOT / (importer.replace(".", "/") + ".py")
        source = file.read_text() if file.exists() else ""
        assert imported in source, f"{importer} no longer imports {imported} ({reason})"


def test_cli_and_worker_build_the_application_without_the_web_layer() -> None:
    problems = web_violations(ROOT)
    assert not problems, "\n".join(problems)


# -- the checker itself, on a throw-away tree -------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "crm2_core" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_flags_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "http/__init__.py": "",
            "http/plugin.py": "def f():\n    from crm2_core.auth.deps import require\n",
            "auth/__init__.py": "",
            "auth/routes.py": "from crm2_core.http import deps\n",
        },
    )

    assert package_cycles(root) == [["auth", "http", "auth"]]
    assert layer_violations(root) == [
        "crm2_core.http.plugin imports crm2_core.auth.deps: http is below auth "
        "(move the shared piece down, or let the lower layer ask through the context)"
    ]


def test_checker_ignores_type_checking_imports_and_allows_serve(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "context.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from crm2_core.events.bus import EventBus\n",
            "cli/serve.py": "def serve():\n    from crm2_core.http.app import create_app\n",
            "cli/main.py": "from crm2_core.http.app import build_app_context\n",
        },
    )

    assert layer_violations(root) == []
    assert web_violations(root) == [
        "crm2_core.cli.main imports crm2_core.http.app: build the context with "
        "crm2_core.bootstrap, only `crm2 serve` (crm2_core.cli.serve) builds the web app"
    ]
