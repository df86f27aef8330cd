"""Run a crm2 worker with the probe plugin (tests start this as a subprocess).

The same code path as ``crm2 worker``; only plugin discovery differs, since the
probe plugin is not an installed distribution.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import probe_plugin

from crm2_core.bootstrap import build_app_context
from crm2_core.events.worker import run_worker
from crm2_core.settings import Settings

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    failures = sys.argv[1] if len(sys.argv) > 1 else ""
    if failures:
        probe_plugin.FAILURES["*"] = int(failures)
    if len(sys.argv) > 2:
        probe_plugin.SLOW_SECONDS[0] = float(sys.argv[2])
    if len(sys.argv) > 3:
        probe_plugin.MAX_RETRIES[0] = int(sys.argv[3])
    if len(sys.argv) > 4:
        probe_plugin.WATCH[0] = sys.argv[4] == "watch"
    context = build_app_context(Settings(_env_file=None), extra_plugins=(probe_plugin,))  # type: ignore[call-arg]
    run_worker(context, threads=2)
