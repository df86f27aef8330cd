"""schemathesis against the full app (every installed plugin) as each built-in role.

Every check, a fixed seed and bounded examples, the stateful phase included
(links inferred from ``Location`` headers and the schema). The app is served by
uvicorn on 127.0.0.1 in this test's event loop, the CLI runs as a subprocess.
It runs once per suite, on PostgreSQL when the run includes it (where NUL and
integer overflows used to be 500s), else on SQLite.

Bounded: ``ROLES`` sets each role's phases and examples per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
import time
from pathlib import Path

import pytest
import uvicorn

from crm2_core.plugins.discovery import discover_installed
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.databases import TestDatabase
from crm2_core.testing.pytest_plugin import AppFactory

HERE = Path(__file__).parent
SEED = 20261203
# (phases, examples per operation): the admin runs every phase, the coverage phase's
# boundary and negative cases included, and reaches every success path; the other
# roles fuzz and chain calls for their 403s, visibility and what they may still do.
ROLES = {
    "admin": ("examples,coverage,fuzzing,stateful", 10),
    "manager": ("fuzzing,stateful", 5),
    "agent": ("fuzzing,stateful", 5),
    "viewer": ("fuzzing,stateful", 4),
}
RUN_SECONDS = 900  # per role: a guard against a hang, far above the measured time
STAGES = [
    {"name": "Lead", "probability": 10},
    {"name": "Offer", "probability": 60},
    {"name": "Won", "probability": 100, "kind": "won"},
    {"name": "Lost", "probability": 0, "kind": "lost"},
]


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process keeps its own
        pass


@contextlib.asynccontextmanager
async def _serve(app: Crm2TestApp):  # type: ignore[no-untyped-def]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app.app, lifespan="off", log_level="error")
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not server.started:
        assert not task.done() and time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)


async def _some_data(app: Crm2TestApp, headers: dict[str, str]) -> None:
    """A pipeline, a client and a deal, so reads and links have something to find."""
    api = "/api/v1/deals"
    pipeline = await app.client.post(
        f"{api}/pipelines",
        json={"name": "Sales", "is_default": True, "stages": STAGES},
        headers=headers,
    )
    assert pipeline.status_code == 201, pipeline.text
    client = await app.client.post(
        f"{api}/clients", json={"kind": "company", "name": "Acme"}, headers=headers
    )
    assert client.status_code == 201, client.text
    deal = await app.client.post(
        f"{api}/deals",
        json={"title": "First", "client_id": client.json()["id"], "value": "10.00"},
        headers=headers,
    )
    assert deal.status_code == 201, deal.text


async def _run(url: str, role: str, token: str, out: Path) -> tuple[int, str]:
    st = Path(sys.executable).parent / "st"
    command = [
        str(st),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--phases",
        ROLES[role][0],
        "--max-examples",
        str(ROLES[role][1]),
        "--workers",
        "2",
        "--header",
        f"Authorization: Bearer {token}",
        "--report",
        "junit",
        "--report-dir",
        str(out),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "crm2_schemathesis_hooks"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    log = out / f"{role}.txt"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=out, env=env, stdout=sink, stderr=asyncio.subprocess.STDOUT
        )
        try:
            code = await asyncio.wait_for(process.wait(), RUN_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            code = -1
    return code, log.read_text(errors="replace")


def _summary(output: str) -> str:
    """Each failure (operation, check, reproducing curl) first, then the run's summary."""
    lines = output.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if "FAILURES" in line), None)
    end = next((i for i, line in enumerate(lines) if "SUMMARY" in line), len(lines))
    warnings = next((i for i, line in enumerate(lines) if "WARNINGS" in line), end)
    failures = lines[start : min(end, warnings)][:150] if start is not None else []
    return "\n".join([*failures, *lines[end:][-30:]])


@pytest.mark.slow
@pytest.mark.parametrize("role", list(ROLES))
async def test_schemathesis_finds_no_failure_for_the_role(
    role: str,
    crm2_app_factory: AppFactory,
    crm2_database: TestDatabase,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """One role per test, so pytest-xdist runs the roles side by side."""
    backends = str(request.config.getoption("--crm2-db"))
    if crm2_database.backend == "sqlite" and "postgresql" in backends:
        pytest.skip("runs once per suite: on PostgreSQL")
    # Every installed plugin, so each new one is fuzzed as soon as it exists.
    plugins = sorted(name for name, p in discover_installed().items() if not p.builtin)
    # backup's sets and key file and the documents' files go to the test's folder, not
    # into the working directory (./backups, ./var/documents: the settings' defaults)
    local = {
        "backup": {"dir": str(tmp_path / "backups"), "key_file": str(tmp_path / "key")},
        "documents": {"local_root": str(tmp_path / "documents")},
    }
    app = await crm2_app_factory(
        plugins=plugins,
        sse_max_connection_seconds=1,
        plugin_settings={k: v for k, v in local.items() if k in plugins},
    )
    admin = await app.login("admin")
    if "deals" in plugins:
        await _some_data(app, admin)
    # FastAPI builds the document once, on first request (seconds with every plugin on a
    # busy machine): build it here, so schemathesis's download is not timed against it.
    assert (await app.client.get("/openapi.json")).status_code == 200
    async with _serve(app) as url:
        headers = admin if role == "admin" else await app.login(role)
        token = headers["Authorization"].removeprefix("Bearer ")
        started = time.monotonic()
        code, output = await _run(url, role, token, tmp_path)
        seconds = round(time.monotonic() - started, 1)
    cases = re.search(r"(\d+) generated", output)
    print(f"schemathesis {role}: exit {code}, {seconds} s, {cases and cases[0]}")
    assert code == 0, f"== {role} ==\n{_summary(output)}"
