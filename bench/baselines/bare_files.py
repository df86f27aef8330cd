"""Baseline for scenario 13: bare Starlette routes streaming a request body to disk and back.

``POST /upload`` writes ``request.stream()`` chunk by chunk to a file (no parsing,
no hashing, no database); ``GET /download/{name}`` streams it back with
``FileResponse``. Served by the harness with one uvicorn worker::

    python -m uvicorn --app-dir bench/baselines bare_files:app --host 127.0.0.1
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

ROOT = Path(os.environ.get("BENCH_FILES_ROOT", "bench-files"))


async def upload(request: Request) -> Response:
    ROOT.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - as cheap as crm2's own
    name = uuid.uuid4().hex
    size = 0
    with open(ROOT / name, "wb") as out:  # noqa: ASYNC230 - the same page-cache writes crm2 does
        async for chunk in request.stream():
            out.write(chunk)
            size += len(chunk)
    return JSONResponse({"name": name, "size": size}, status_code=201)


async def download(request: Request) -> Response:
    name = request.path_params["name"]
    return FileResponse(ROOT / Path(name).name, media_type="application/octet-stream")


async def healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/upload", upload, methods=["POST"]),
        Route("/download/{name}", download),
        Route("/healthz", healthz),
    ]
)
