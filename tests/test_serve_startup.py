"""What ``crm2 serve`` leaves for later so it answers sooner (bench scenario 7).

Each check runs in a fresh interpreter: this test process has imported and used
most of crm2 already, so ``sys.modules`` and the models' state say nothing here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(code: str, database_url: str = "sqlite+aiosqlite://") -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_")}
    env.update(CRM2_ENV="development", CRM2_DATABASE_URL=database_url)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_app_with_every_plugin_is_built_without_an_http_client() -> None:
    # httpx is for outbound calls (webhooks, Telegram, Google Drive), which a start makes none of.
    out = _run(
        "import sys\n"
        "from crm2_core.http.app import create_app\n"
        "app = create_app()\n"
        "print(len(app.state.context.plugins.ordered) > 6)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'httpx'))\n"
    )
    assert out == ["True", "[]"]


def test_serve_starts_without_the_libraries_only_commands_and_rules_use() -> None:
    # rich prints the other commands' tables, Jinja2 renders notification rules: neither
    # is needed to answer a request, and importing both was ~50 ms of every start.
    out = _run(
        "import sys\n"
        "from crm2_core.cli.main import build_cli\n"
        "build_cli()\n"
        "import crm2_core.cli.bootstrap, crm2_core.cli.serve\n"
        "from crm2_core.http.app import create_app\n"
        "app = create_app()\n"
        "print(len(app.state.context.plugins.ordered) > 6)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'jinja2'}))\n"
    )
    assert out == ["True", "[]"]


def test_the_routes_of_every_plugin_are_mounted_without_building_their_dependants() -> None:
    # FastAPI builds a mounted route's request handling again at its router's first
    # request; built at import as well, it would be start-up work done twice.
    out = _run(
        "from crm2_core.http.app import create_app\n"
        "app = create_app()\n"
        "routes = app.state.crm2_routes\n"
        "print(len(routes) > 150, [r.path for r in routes if 'dependant' in r.__dict__])\n"
    )
    assert out == ["True []"]


def test_table_and_event_validators_are_built_on_first_use() -> None:
    out = _run(
        "import uuid\n"
        "from crm2_core.http.app import create_app\n"
        "from crm2_core.auth.events import RoleChanged\n"
        "from crm2_deals.models import Client\n"
        "create_app()\n"
        "print(Client.__pydantic_complete__, RoleChanged.__pydantic_complete__)\n"
        "event = RoleChanged.model_validate({'name': 'sales'})\n"
        "print(event.name, RoleChanged.__pydantic_complete__)\n"
        "row = {'kind': 'company', 'name': 'Acme', 'owner_id': uuid.uuid4()}\n"
        "client = Client.model_validate(row)\n"
        "print(client.name, Client.__pydantic_complete__)\n"
    )
    assert out == ["False False", "sales True", "Acme True"]


def test_the_cli_pauses_the_collector_for_the_start_up_and_resumes_it_for_a_command() -> None:
    out = _run(
        "import gc, sys\n"
        "import crm2_core.cli\n"
        "m = sys.modules['crm2_core.cli.main']\n"
        "seen = []\n"
        "real = m.build_cli\n"
        "def spy():\n"
        "    seen.append(gc.isenabled())\n"
        "    return real()\n"
        "m.build_cli = spy\n"
        "@m.cli.command('gc-state')\n"
        "def state():\n"
        "    print('command', gc.isenabled())\n"
        "sys.argv = ['crm2', 'gc-state']\n"
        "try:\n"
        "    m.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('start-up', seen)\n"
    )
    assert out == ["command True", "start-up [False]"]


def test_a_core_command_runs_without_the_plugins_commands_and_help_lists_them() -> None:
    # `crm2 serve` is a core command: the plugins' command modules (and a second
    # plugin registry built only to find them) would be start-up work for nothing.
    out = _run(
        "import sys\n"
        "import crm2_core.cli\n"
        "m = sys.modules['crm2_core.cli.main']\n"
        "@m.cli.command('probe')\n"
        "def probe():\n"
        "    print(sorted(n for n in ('crm2_backup.cli', 'crm2_deals.cli') if n in sys.modules))\n"
        "for argv in (['probe'], ['--help'], ['deals', '--help']):\n"
        "    sys.argv = ['crm2', *argv]\n"
        "    try:\n"
        "        m.main()\n"
        "    except SystemExit:\n"
        "        pass\n"
    )
    assert out[0] == "[]"
    listed = [line.split()[0] for line in out if line.startswith("  ")]
    assert {"backup", "deals", "serve", "migrate"} <= set(listed)
    assert any(line.startswith("Usage: crm2 deals") for line in out)


def test_serve_resumes_the_collector_once_the_app_has_started(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm2.db'}"
    crm2 = Path(sys.executable).with_name("crm2")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_")}
    env.update(CRM2_ENV="development", CRM2_DATABASE_URL=url)
    subprocess.run([crm2, "migrate"], env=env, capture_output=True, timeout=300, check=True)
    out = _run(
        "import asyncio, gc\n"
        "from crm2_core.http.app import create_app\n"
        "gc.disable()\n"
        "app = create_app()\n"
        "app.state.freeze_gc = True\n"
        "async def start():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        print(gc.isenabled())\n"
        "asyncio.run(start())\n",
        url,
    )
    assert out == ["True"]
