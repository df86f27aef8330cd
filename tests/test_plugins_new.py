"""``crm2 plugins new NAME``: the scaffold installs, migrates, lists and passes its own tests.

Exactly what a plugin author does, in a temporary folder: scaffold, ``pip install -e``
(``--no-deps`` into a fresh virtualenv that sees this environment's packages through a
``.pth`` file, so nothing is downloaded but the build backend and this venv is not
touched), ``crm2 migrate``, ``crm2 plugins list``, then the plugin's own pytest run.
Bounded: every step has a timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

import crm2_core.cli.commands  # noqa: F401  (registers the core commands)
from crm2_core.cli.main import cli

LEAKY = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
CRM2 = "from crm2_core.cli import main; main()"


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    )
    return done.stdout


def _venv_seeing_this_one(folder: Path) -> Path:
    """A venv whose site-packages chain to this environment's (editable installs included)."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=60)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "crm2-parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def test_plugins_new_refuses_a_bad_name_and_a_full_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["plugins", "new", "Bad-Name", "--dir", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "cannot be a plugin name" in bad.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    full = runner.invoke(cli, ["plugins", "new", "loyalty", "--dir", str(tmp_path / "full")])
    assert full.exit_code == 1 and "is not empty" in full.output


@pytest.mark.slow
def test_a_scaffolded_plugin_installs_migrates_lists_and_passes_its_tests(tmp_path: Path) -> None:
    target = tmp_path / "crm2-loyalty"
    made = CliRunner().invoke(cli, ["plugins", "new", "loyalty", "--dir", str(target)])
    assert made.exit_code == 0, made.output
    python = _venv_seeing_this_one(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_") and k not in LEAKY}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", COLUMNS="200", NO_COLOR="1")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "-e", str(target)],
        tmp_path, env, timeout=240,
    )  # fmt: skip

    work = tmp_path / "run"
    work.mkdir()
    cli_env = env | {"CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'crm2.db'}"}
    migrated = _run([str(python), "-c", CRM2, "migrate"], work, cli_env, timeout=120)
    assert "loyalty" in migrated
    listed = _run([str(python), "-c", CRM2, "plugins", "list"], work, cli_env, timeout=60)
    row = next(line for line in listed.splitlines() if "│ loyalty " in line)
    assert [c.strip() for c in row.strip("│").split("│")][2:5] == ["yes", "-", "ok"]

    tests = _run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--crm2-db", "sqlite"],
        target, env, timeout=300,
    )  # fmt: skip
    assert " passed" in tests and "failed" not in tests, tests
