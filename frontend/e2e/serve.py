"""``crm2 serve`` for the browser tests, plus the third-party example plugin ``hello``.

hello (examples/plugins/hello) is not installed in the project's venv: it is
added here as a plugin object, exactly as a pip-installed third-party plugin
would be found, so the console must show it without knowing it beforehand.

    .venv/bin/python frontend/e2e/serve.py PORT     (settings from CRM2_* variables)

plugins/console/tests/test_browser.py starts it; it lives here, beside the scenarios it
serves, because it assembles the app from the core's internals as crm2 serve does.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "plugins" / "hello"))

import uvicorn  # noqa: E402

import crm2_hello.plugin as hello  # noqa: E402
from crm2_core import migrate  # noqa: E402
from crm2_core.http.app import build_app_context, create_app  # noqa: E402
from crm2_core.settings import Settings  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    context = build_app_context(Settings(), extra_plugins=(hello,))

    async def prepare() -> None:
        await migrate.upgrade(context.engine, context.plugins)
        await context.engine.dispose()  # its connections belong to this loop, not uvicorn's

    asyncio.run(prepare())
    app = create_app(context=context)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
