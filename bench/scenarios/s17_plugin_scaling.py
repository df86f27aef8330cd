"""Scenario 17: one plugin's endpoint with 1, 6 and 12 plugins enabled.

Every plugin enabled must not make every request dearer: the core's per-request work
(authentication, permission checks, the session, middleware, hooks called per request)
should not grow with the number of plugins.

The plugins are generated for the run by crm2's own scaffold (``crm2 plugins new``,
``crm2_core.scaffold.new_plugin``): ``synth01`` … ``synth12``, each a complete plugin
with a table and its migration, permissions, routes (create, list, get, update,
delete), two event types, an event handler, an SSE channel, ``crm2_resolve_entity``
and seeds, no middleware. They live in the run's temporary directory and are loaded
like ``benchprobe`` (scenario 4): one throw-away ``.dist-info`` per plugin declaring its
``crm2.plugins`` entry point, the directory on ``PYTHONPATH``. Nothing is installed.

One PostgreSQL database migrated with all twelve; three ``crm2 serve`` processes on
it with ``CRM2_PLUGINS`` = synth01 / synth01-06 / synth01-12 (only the synthetic
plugins, so "1" is one plugin). Measured: ``GET /api/v1/synth01/items?limit=50``
(permission check, visibility, 20 items) as the admin, closed loop, the three
variants in turn (order reversed every other round, so a drifting background load
does not favour one). Ratio: 12 plugins / 1 plugin (and 6 / 1) of server CPU ms per
request (target ≤ 1.1x); req/s informative.
"""

from __future__ import annotations

import compileall
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
from harness import Crm2Env, Envs, Metric, Profile, Server, log, measure_http, rounds, running

COUNTS = (1, 6, 12)
ITEMS = 20


def plugin_name(number: int) -> str:
    return f"synth{number:02d}"


def write_plugins(workdir: Path, count: int) -> Path:
    """Scaffold ``count`` plugins into ``workdir/s17-site`` with their ``.dist-info``s."""
    from crm2_core.scaffold import new_plugin

    site = workdir / "s17-site"
    scratch = workdir / "s17-scaffold"
    for number in range(1, count + 1):
        name = plugin_name(number)
        new_plugin(name, scratch / name)
        shutil.move(scratch / name / f"crm2_{name}", site / f"crm2_{name}")
        info = site / f"crm2_{name}-0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: crm2-{name}\nVersion: 0\n")
        (info / "entry_points.txt").write_text(f"[crm2.plugins]\n{name} = crm2_{name}.plugin\n")
    shutil.rmtree(scratch, ignore_errors=True)
    compileall.compile_dir(site, quiet=1)  # as pip would; serve does not write bytecode
    return site


def enabled(count: int) -> str:
    return ",".join(plugin_name(n) for n in range(1, count + 1))


def plugins_env(envs: Envs, _profile: Profile | None = None) -> Crm2Env:
    """The database migrated with ``synth01`` … ``synth12``, written once per run."""
    top = max(COUNTS)
    with envs.lock("s17 plugins"):
        site = envs.workdir / "s17-site"
        if not site.exists():
            site = write_plugins(envs.workdir, top)
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return envs.get("plugins", PYTHONPATH=pythonpath, CRM2_PLUGINS=enabled(top))


def scenario_17(envs: Envs, profile: Profile) -> list[Metric]:
    """Server CPU per request of synth01's list with 12 (and 6) vs 1 plugins enabled."""
    top = max(COUNTS)
    env = plugins_env(envs)
    path = f"/api/v1/{plugin_name(1)}/items?limit=50"
    label = f"17 GET {path}, N plugins vs 1"
    cpu12 = Metric(label, f"server CPU/req, {top} vs 1 plugins", "ms", False, target_ratio=1.1)
    cpu6 = Metric(label, "server CPU/req, 6 vs 1 plugins", "ms", False)
    rps12 = Metric(label, f"req/s, {top} vs 1 plugins", "req/s", True)
    servers: dict[int, Server] = {count: env.serve(CRM2_PLUGINS=enabled(count)) for count in COUNTS}
    with running(*servers.values()):
        urls = {count: server.url for count, server in servers.items()}
        headers = env.bearer(urls[1])
        for n in range(ITEMS):
            item = {"title": f"Item {n}", "amount": "12.50"}
            answer = httpx.post(f"{urls[1]}/api/v1/{plugin_name(1)}/items", headers=headers,
                                json=item, timeout=30)  # fmt: skip
            answer.raise_for_status()
        bodies = {count: httpx.get(urls[count] + path, headers=headers, timeout=30)
                  for count in COUNTS}  # fmt: skip
        for count, answer in bodies.items():
            answer.raise_for_status()
            if answer.json() != bodies[1].json() or len(answer.json()["items"]) != ITEMS:
                raise RuntimeError(f"{count} plugins: another answer than with 1 plugin")
        for number, measured in rounds(profile):
            order = COUNTS if number % 2 == 0 else tuple(reversed(COUNTS))
            got: dict[int, dict[str, Any]] = {}
            for count in order:
                got[count] = out = measure_http(
                    servers[count], "closed", urls[count] + path, profile.closed_s,
                    client="raw", connections=profile.connections, headers=headers,
                )  # fmt: skip
                log(f"s17 round {number} {count} plugins: {out['rps']:.0f} req/s, "
                    f"{out['cpu_ms_per_req'] or 0:.3f} ms CPU/req, "
                    f"errors {out['errors']}")  # fmt: skip
            if measured:
                cpu12.add(got[top]["cpu_ms_per_req"], got[1]["cpu_ms_per_req"])
                cpu6.add(got[6]["cpu_ms_per_req"], got[1]["cpu_ms_per_req"])
                rps12.add(got[top]["rps"], got[1]["rps"])
    return [cpu12, cpu6, rps12]
