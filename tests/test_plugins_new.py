"""``crm2 plugins new NAME``: the scaffold installs, migrates, lists and passes its own tests.

Exactly what a plugin author does, in a temporary folder: scaffold, ``pip install -e``
(``--no-deps`` into a fresh virtualenv that sees this environment's packages through a
``.pth`` file, so nothing is downloaded but the build backend and this venv is not
touched), ``crm2 migrate``, ``crm2 plugins list``, then the plugin's own pytest run.
Bounded: every step has a timeout.
"""

from __future__ import annotations

import os
import shlex
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
    taken = runner.invoke(cli, ["plugins", "new", "deals", "--dir", str(tmp_path / "d")])
    assert taken.exit_code == 1, taken.output
    assert "a plugin named deals is installed already (crm2-deals)" in taken.output
    assert not (tmp_path / "d").exists()
    (tmp_path / "file").write_text("not a folder")
    unwritable = tmp_path / "file" / "crm2-loyalty"  # a folder inside a file: ENOTDIR
    blocked = runner.invoke(cli, ["plugins", "new", "loyalty", "--dir", str(unwritable)])
    assert blocked.exit_code == 1, blocked.output
    assert blocked.output == (
        f"Error: cannot write the plugin into {unwritable}: Not a directory: choose another --dir\n"
    )


TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "plugins" / "tutorial.md"


def tutorial_commands() -> list[str]:
    """Every ``$ …`` line of the tutorial's console blocks, in order."""
    commands, inside = [], False
    for line in TUTORIAL.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```console"
        elif inside and line.startswith("$ "):
            commands.append(line[2:].strip())
    return commands


def _plugin_row(listed: str, name: str) -> list[str]:
    row = next(line for line in listed.splitlines() if f"│ {name} " in line)
    return [c.strip() for c in row.strip("│").split("│")]


@pytest.mark.slow
def test_the_tutorial_runs_command_by_command(tmp_path: Path) -> None:
    """Each tutorial command, run as written (``crm2`` and ``pytest`` in the new venv;
    ``pip install -e`` with ``--no-deps``: the venv already sees every dependency)."""
    python = _venv_seeing_this_one(tmp_path / "venv")
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_") and k not in LEAKY}
    base.update(PIP_DISABLE_PIP_VERSION_CHECK="1", COLUMNS="200", NO_COLOR="1")
    database = {"CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'crm2.db'}"}
    cwd, outputs = tmp_path, {}
    commands = tutorial_commands()
    assert commands[:2] == ["crm2 plugins new loyalty", "pip install -e './crm2-loyalty[test]'"]
    for command in commands:
        words = shlex.split(command)
        assigned = {}
        while words and "=" in words[0] and not words[0].startswith("-"):
            key, _, value = words.pop(0).partition("=")
            assigned[key] = value
        env = base | assigned
        if words[0] == "crm2":
            argv, env = [str(python), "-c", CRM2, *words[1:]], env | database | assigned
        elif words[:3] == ["pip", "install", "-e"]:
            target = str((cwd / words[3]).resolve()).split("[")[0]
            argv = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "-e", target]  # fmt: skip
        elif words[0] == "cd":
            cwd = cwd / words[1]
            continue
        elif words == ["pytest"]:
            argv = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "--crm2-db", "sqlite"]  # fmt: skip
        else:
            raise AssertionError(f"the tutorial runs {command!r}: teach this test to run it")
        outputs[command] = _run(argv, cwd, env, timeout=300)

    assert "loyalty" in outputs["crm2 migrate"]
    assert _plugin_row(outputs["crm2 plugins list"], "loyalty")[2:5] == ["yes", "-", "ok"]
    assert _plugin_row(outputs["CRM2_PLUGINS= crm2 plugins list"], "loyalty")[2:5] == [
        "no", "-", "disabled"
    ]  # fmt: skip
    assert " passed" in outputs["pytest"] and "failed" not in outputs["pytest"]
