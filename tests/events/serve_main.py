"""Run the API with the probe plugin under uvicorn (tests start this as a subprocess).

``--no-relay`` commits events but never relays them: the window between commit
and relay that a SIGKILL test aims at, held open as long as the test needs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import probe_plugin

from crm2_core.bootstrap import build_app_context
from crm2_core.http.app import create_app
from crm2_core.http.server import run_server
from crm2_core.settings import Settings

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    port = int(sys.argv[1])
    context = build_app_context(Settings(_env_file=None), extra_plugins=(probe_plugin,))  # type: ignore[call-arg]
    if "--no-relay" in sys.argv:
        bus = context.events
        start = bus.start

        async def start_without_relay(*, relay: bool = True) -> None:
            await start(relay=False)

        bus.start = start_without_relay
    run_server(create_app(context=context), host="127.0.0.1", port=port, log_level="warning")
