"""Memory soak of the web console: the pipeline board open on its SSE stream while deals move.

    .venv/bin/python bench/console_soak.py --minutes 10 [--rate 2] [--sample 30]

Starts crm2 (SQLite in a temporary folder, ``crm2 migrate``, ``crm2 seed demo``, one admin)
on a free 127.0.0.1 port with the console's build, then runs ``frontend/scripts/soak.mjs``:
headless Chromium keeps ``/deals/`` open while ``--rate`` deal moves a second flow through
the API and the ``deals`` stream; every ``--sample`` seconds a forced GC and a read of the JS
heap, DOM nodes, listeners (CDP) and Chromium's resident memory (/proc). Prints the samples
and a summary (first vs last quarter's median heap, i.e. the same run's start as the
baseline, and the slope per hour) and writes them to
``bench/results/console-soak-<time>.json``. Measures, never asserts: exit status 1 only
when the run itself broke (no moves, or the board stopped keeping up).

Needs Node.js, the console's build (``python3 dev.py run`` or ``dev.build_console()``) and
``/usr/bin/chromium`` (``CRM2_E2E_CHROMIUM``). Everything it starts is stopped, and its
temporary folder removed, at the end; the run is bounded by ``--minutes`` (+ set-up).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import BENCH, HOST, REPO, USER_EMAIL, USER_PASSWORD, Crm2Env, free_port, log

FRONTEND = REPO / "frontend"
BUILD = REPO / "plugins" / "console" / "crm2_console" / "static"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2.0, help="deal moves per second")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument(
        "--build",
        type=Path,
        default=BUILD,
        help="the console build to serve (a copy: a long run keeps it while frontend/ is rebuilt)",
    )
    args = parser.parse_args()
    build = args.build.resolve()
    if not (build / "index.html").exists():
        sys.exit("the console is not built: python3 -c 'import dev; dev.build_console()'")
    stamp = time.strftime("%Y-%m-%d-%H%M", time.gmtime())
    out = BENCH / "results" / f"console-soak-{stamp}.json"
    with tempfile.TemporaryDirectory(prefix="crm2-soak-") as tmp:
        env = Crm2Env(Path(tmp), name="soak", database="sqlite").prepare()
        try:
            log("soak: seeding the demo data")
            env.crm2("seed", "demo", timeout=300)
            port = free_port()
            base = f"http://{HOST}:{port}"
            with env.serve(port, CRM2_CONSOLE_DIST_DIR=str(build)) as server:
                server.wait_ready(f"{base}/healthz", timeout=60)
                soak_env = {
                    **os.environ,
                    "CRM2_E2E_BASE_URL": base,
                    "CRM2_E2E_EMAIL": USER_EMAIL,
                    "CRM2_E2E_PASSWORD": USER_PASSWORD,
                    "CRM2_SOAK_OUT": str(out),
                }
                command = ["node", "scripts/soak.mjs", str(args.minutes), str(args.rate)]
                done = subprocess.run(
                    [*command, str(args.sample)],
                    cwd=FRONTEND,
                    env=soak_env,
                    timeout=args.minutes * 60 + 300,
                )
        finally:
            env.close()
    if out.exists():
        summary = json.loads(out.read_text())["summary"]
        first = summary["heap_mb_first_quarter_median"]
        last = summary["heap_mb_last_quarter_median"]
        log(f"soak: heap {first} MB -> {last} MB (x{last / first:.3f}), results in {out}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
