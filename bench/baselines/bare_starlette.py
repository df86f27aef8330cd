"""Baseline for scenario 1: a bare Starlette route returning fixed bytes.

The bytes are the body the full app answered for the same request, read from the
file named by ``BENCH_BODY_FILE`` at import. Served by the harness with::

    python -m uvicorn --app-dir bench/baselines bare_starlette:app --host 127.0.0.1
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = Path(os.environ["BENCH_BODY_FILE"]).read_bytes()
PATH = os.environ.get("BENCH_PATH", "/api/v1/auth/me")


async def resource(_request: Request) -> Response:
    return Response(BODY, media_type="application/json")


async def healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route(PATH, resource), Route("/healthz", healthz)])
