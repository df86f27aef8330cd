"""A fake Telegram Bot API on 127.0.0.1: records every method call (``sendMessage``,
``answerCallbackQuery``, …), can be told to fail."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN = "123456:TEST-token"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class FakeBotApi:
    url: str = ""
    sent: list[dict[str, Any]] = field(default_factory=list)  # sendMessage payloads
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # every method
    failing: int | None = None  # answer this status to every call
    wrong_token: int = 0

    async def texts(self) -> list[str]:
        return [str(m.get("text")) for m in self.sent]

    async def fail(self) -> None:
        self.failing = 500

    def to(self, chat_id: int) -> list[str]:
        return [str(m["text"]) for m in self.sent if m.get("chat_id") == chat_id]

    async def handle(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != TOKEN:
            self.wrong_token += 1
            return JSONResponse({"ok": False, "error_code": 401}, status_code=401)
        if self.failing is not None:
            body = {"ok": False, "error_code": self.failing, "description": "fake failure"}
            return JSONResponse(body, status_code=self.failing)
        payload = await request.json()
        method = request.path_params["method"]
        self.calls.append((method, payload))
        if method != "sendMessage":
            return JSONResponse({"ok": True, "result": True})
        self.sent.append(payload)
        result = {"message_id": len(self.sent), "chat": {"id": payload.get("chat_id")}}
        return JSONResponse({"ok": True, "result": result})


@contextlib.asynccontextmanager
async def fake_bot_api() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    app = Starlette(routes=[Route("/bot{token}/{method}", fake.handle, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = _Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to await
            await asyncio.sleep(0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 5)
