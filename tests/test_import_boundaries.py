"""Who may import whom (STYLE.md), checked on the source with ``ast``.

    crm2_hookspecs  -> the standard library and pluggy only
    crm2_core       -> crm2_hookspecs, never a plugin
    crm2_<plugin>   -> crm2_core.api, crm2_hookspecs, itself, and the plugins it depends on
                       (its tests: also crm2_core.testing; its migrations: also crm2_core.db.types,
                       which Alembic's autogenerate writes for the column types)
    inside a plugin:   routes -> service -> repository -> models

Every package under ``plugins/*/`` and ``examples/plugins/*/`` is checked, so a
new plugin is covered the day it lands. Imports inside functions and under
``TYPE_CHECKING`` count too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_PACKAGES = {"crm2_core", "crm2_hookspecs"}
# A module may import its own layer and the ones below it, never one above.
LAYERS = {"models": 0, "repository": 1, "service": 2, "routes": 3}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    file: Path
    line: int
    target: str  # the imported module, dotted and absolute

    def where(self, root: Path) -> str:
        return f"{self.file.relative_to(root)}:{self.line}"


@dataclass(frozen=True)
class PluginPackage:
    """A plugin's import package: ``crm2_deals`` in ``plugins/deals/crm2_deals``."""

    name: str  # dotted: crm2_deals, or crm2_core.auth for a built-in plugin
    directory: Path


def _module_name(source_root: Path, file: Path) -> str:
    parts = list(file.relative_to(source_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _python_files(package_dir: Path) -> Iterator[Path]:
    yield from sorted(p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts)


def _imports_in(source_root: Path, file: Path) -> Iterator[Import]:
    module = _module_name(source_root, file)
    is_package = file.name == "__init__.py"
    tree = ast.parse(file.read_text(), filename=str(file))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, file, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = package[: len(package) - (node.level - 1)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            # `from pkg import sub` imports the submodule when there is one.
            for alias in node.names:
                candidate = source_root.joinpath(*prefix.split("."), alias.name)
                if candidate.with_suffix(".py").is_file() or candidate.is_dir():
                    yield Import(module, file, node.lineno, f"{prefix}.{alias.name}")
                else:
                    yield Import(module, file, node.lineno, prefix)


def imports_under(source_root: Path, package_dir: Path) -> list[Import]:
    found: list[Import] = []
    for file in _python_files(package_dir):
        found.extend(_imports_in(source_root, file))
    return found


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def plugin_packages(root: Path) -> list[PluginPackage]:
    """Every plugin package in the repository: plugins/*/crm2_*, examples/plugins/*/crm2_*."""
    found = []
    for pattern in ("plugins/*/crm2_*", "examples/plugins/*/crm2_*"):
        for directory in sorted(root.glob(pattern)):
            if directory.is_dir():
                found.append(PluginPackage(directory.name, directory))
    return found


def manifest_depends(plugin_file: Path) -> tuple[str, ...]:
    """The ``depends=(...)`` of plugin.py's ``PluginManifest(...)``, read without importing."""
    tree = ast.parse(plugin_file.read_text(), filename=str(plugin_file))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name != "PluginManifest":
            continue
        for keyword in node.keywords:
            if keyword.arg == "depends":
                try:
                    value = ast.literal_eval(keyword.value)
                except ValueError:
                    raise AssertionError(
                        f"{plugin_file}: write depends=(...) as a literal tuple of plugin names"
                    ) from None
                return tuple(value)
        return ()
    raise AssertionError(f"{plugin_file}: no `manifest = PluginManifest(...)` found")


# -- the checks, each returning its violations as lines ----------------------------------


def core_violations(root: Path) -> list[str]:
    return [
        f"{imp.where(root)}: {imp.module} imports {imp.target} (the core never imports a plugin)"
        for imp in imports_under(root, root / "crm2_core")
        if _top(imp.target).startswith("crm2_") and _top(imp.target) not in CONTRACT_PACKAGES
    ]


def hookspecs_violations(root: Path) -> list[str]:
    allowed = set(sys.stdlib_module_names) | {"pluggy", "crm2_hookspecs"}
    source_root = root / "hookspecs"
    return [
        f"{imp.where(root)}: {imp.module} imports {imp.target} "
        "(crm2_hookspecs may use only the standard library and pluggy)"
        for imp in imports_under(source_root, source_root / "crm2_hookspecs")
        if _top(imp.target) not in allowed
    ]


def plugin_dependency_violations(root: Path) -> list[str]:
    problems = []
    for package in plugin_packages(root):
        plugin_file = package.directory / "plugin.py"
        if not plugin_file.is_file():
            problems.append(f"{package.directory.relative_to(root)}: has no plugin.py")
            continue
        depends = manifest_depends(plugin_file)
        allowed = CONTRACT_PACKAGES | {package.name} | {f"crm2_{dep}" for dep in depends}
        for imp in imports_under(package.directory.parent, package.directory):
            top = _top(imp.target)
            if top.startswith("crm2_") and top not in allowed:
                dep = top.removeprefix("crm2_")
                problems.append(
                    f"{imp.where(root)}: {imp.module} imports {imp.target}, but {package.name}'s "
                    f"manifest does not depend on {dep!r}: add it to depends or talk by events"
                )
    return problems


def _layer(package: PluginPackage, module: str) -> str | None:
    if not module.startswith(package.name + "."):
        return None
    room = module[len(package.name) + 1 :].split(".", 1)[0]
    return room if room in LAYERS else None


def _builtin_plugin_packages(root: Path) -> list[PluginPackage]:
    """The core's own default plugins that have the plugin rooms (crm2_core/auth, ...)."""
    return [
        PluginPackage(f"crm2_core.{plugin_file.parent.name}", plugin_file.parent)
        for plugin_file in sorted((root / "crm2_core").glob("*/plugin.py"))
    ]


def layer_violations(root: Path) -> list[str]:
    problems = []
    packages = [(p, p.directory.parent) for p in plugin_packages(root)] + [
        (p, root) for p in _builtin_plugin_packages(root)
    ]
    for package, source_root in packages:
        for imp in imports_under(source_root, package.directory):
            importer, imported = _layer(package, imp.module), _layer(package, imp.target)
            if importer and imported and LAYERS[imported] > LAYERS[importer]:
                problems.append(
                    f"{imp.where(root)}: {importer} imports {imported}; "
                    "the direction is routes -> service -> repository -> models"
                )
    return problems


# The core modules a plugin may import: the public API, and what its tests and
# generated migrations need.
PUBLIC_API = "crm2_core.api"
TEST_API = "crm2_core.testing"
MIGRATION_API = "crm2_core.db.types"


def _allowed_core_import(target: str, room: str) -> bool:
    def within(module: str) -> bool:
        return target == module or target.startswith(module + ".")

    if target == PUBLIC_API:
        return True
    if room == "tests" and (within(TEST_API) or target == PUBLIC_API):
        return True
    return room == "migrations" and within(MIGRATION_API)


def public_api_violations(root: Path) -> list[str]:
    """Plugins import the core only through ``crm2_core.api`` (see docs/plugins/authoring.md)."""
    problems: list[str] = []
    for pattern in ("plugins/*", "examples/plugins/*"):
        for plugin_dir in sorted(root.glob(pattern)):
            for package_dir in [*sorted(plugin_dir.glob("crm2_*")), plugin_dir / "tests"]:
                if not package_dir.is_dir():
                    continue
                for imp in imports_under(plugin_dir, package_dir):
                    if _top(imp.target) != "crm2_core":
                        continue
                    parts = imp.file.relative_to(plugin_dir).parts
                    room = (
                        "tests"
                        if parts[0] == "tests"
                        else ("migrations" if "migrations" in parts else "code")
                    )
                    if not _allowed_core_import(imp.target, room):
                        problems.append(  # one line per import statement
                            f"{imp.where(root)}: imports {imp.target}; a plugin imports the "
                            f"core through {PUBLIC_API} only"
                            + (f" (tests also {TEST_API})" if room == "tests" else "")
                        )
    return list(dict.fromkeys(problems))


# -- the tests -------------------------------------------------------------------------


def test_core_never_imports_a_plugin() -> None:
    problems = core_violations(ROOT)
    assert not problems, "\n".join(problems)


def test_hookspecs_import_only_stdlib_and_pluggy() -> None:
    problems = hookspecs_violations(ROOT)
    assert not problems, "\n".join(problems)


def test_plugins_import_only_the_contract_and_declared_dependencies() -> None:
    problems = plugin_dependency_violations(ROOT)
    assert not problems, "\n".join(problems)


def test_plugins_import_the_core_only_through_its_public_api() -> None:
    problems = public_api_violations(ROOT)
    assert not problems, "\n".join(problems)


def test_plugin_layers_point_from_routes_to_models() -> None:
    problems = layer_violations(ROOT)
    assert not problems, "\n".join(problems)


# -- the checker itself, on a throw-away tree, so the checks above cannot pass vacuously --


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _fake_plugin(root: Path, name: str, depends: tuple[str, ...] = ()) -> Path:
    package = root / "plugins" / name / f"crm2_{name}"
    _write(package.parent, f"crm2_{name}/__init__.py", "")
    _write(
        package.parent,
        f"crm2_{name}/plugin.py",
        "from crm2_hookspecs import PluginManifest\n"
        f"manifest = PluginManifest(name={name!r}, title='x', depends={depends!r})\n",
    )
    return package


def test_checker_flags_an_import_of_an_undeclared_plugin(tmp_path: Path) -> None:
    _fake_plugin(tmp_path, "deals")
    payments = _fake_plugin(tmp_path, "payments")
    _write(payments, "service.py", "def f():\n    from crm2_deals.service import x\n")

    problems = plugin_dependency_violations(tmp_path)

    assert len(problems) == 1
    assert "crm2_deals.service" in problems[0]
    assert "does not depend on 'deals'" in problems[0]


def test_checker_allows_an_import_of_a_declared_dependency(tmp_path: Path) -> None:
    _fake_plugin(tmp_path, "deals")
    payments = _fake_plugin(tmp_path, "payments", depends=("deals",))
    _write(payments, "service.py", "from crm2_deals import service\nimport crm2_core.errors\n")

    assert plugin_dependency_violations(tmp_path) == []


def test_checker_flags_a_repository_importing_the_service(tmp_path: Path) -> None:
    deals = _fake_plugin(tmp_path, "deals")
    _write(deals, "service.py", "from . import repository\n")
    _write(deals, "repository.py", "from .service import rules\nfrom .models import Deal\n")
    _write(deals, "models.py", "")

    problems = layer_violations(tmp_path)

    assert len(problems) == 1
    assert "repository imports service" in problems[0]


def test_checker_flags_the_core_importing_a_plugin(tmp_path: Path) -> None:
    _write(tmp_path, "crm2_core/__init__.py", "")
    _write(tmp_path, "crm2_core/app.py", "import crm2_hookspecs\nfrom crm2_deals import plugin\n")

    problems = core_violations(tmp_path)

    assert len(problems) == 1
    assert "crm2_deals" in problems[0]


def test_checker_flags_a_plugin_importing_a_core_module_outside_the_public_api(
    tmp_path: Path,
) -> None:
    deals = _fake_plugin(tmp_path, "deals")
    _write(
        deals,
        "service.py",
        "from crm2_core.api import publish\nfrom crm2_core.auth.models import User\n",
    )
    _write(deals, "migrations/versions/a.py", "import crm2_core.db.types\n")
    _write(
        deals.parent,
        "tests/test_x.py",
        "from crm2_core.testing import Crm2TestApp\nimport crm2_core.events\n",
    )

    problems = public_api_violations(tmp_path)

    assert len(problems) == 2
    assert "crm2_core.auth.models" in problems[0]
    assert "crm2_core.events" in problems[1]


def test_the_core_and_every_plugin_ship_their_type_hints() -> None:
    """py.typed (PEP 561): code that imports crm2_core or a plugin is type-checked against it."""
    packages = [ROOT / "crm2_core", *(p.directory for p in plugin_packages(ROOT))]
    missing = [str(p.relative_to(ROOT)) for p in packages if not (p / "py.typed").exists()]
    assert not missing, f"add an empty py.typed to: {', '.join(missing)}"
