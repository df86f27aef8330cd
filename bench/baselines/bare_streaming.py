"""Baseline for scenario 6: a bare Starlette ``StreamingResponse`` holding idle SSE streams.

``GET /stream`` answers ``text/event-stream`` with one opening message, then a
heartbeat comment every ``BENCH_HEARTBEAT_SECONDS`` (15, crm2's default) and
nothing else. Served by the harness with one uvicorn worker::

    python -m uvicorn --app-dir bench/baselines bare_streaming:app --host 127.0.0.1
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

HEARTBEAT_SECONDS = float(os.environ.get("BENCH_HEARTBEAT_SECONDS", "15"))
OPENING = b'id: 0\r\nevent: connected\r\ndata: {"position": 0}\r\nretry: 3000\r\n\r\n'


async def events() -> AsyncIterator[bytes]:
    yield OPENING
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        yield b": ping\r\n\r\n"


async def stream(_request: Request) -> StreamingResponse:
    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


async def healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/stream", stream), Route("/healthz", healthz)])
