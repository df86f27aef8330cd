"""A fake Telegram Bot API on 127.0.0.1: records every method call (``sendMessage``,
``answerCallbackQuery``, …), can be told to fail."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm2_core.testing.servers import local_server

TOKEN = "123456:TEST-token"


@dataclass
class FakeBotApi:
    url: str = ""
    sent: list[dict[str, Any]] = field(default_factory=list)  # sendMessage payloads
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # every method
    failing: int | None = None  # answer this status to every call
    description: str = "fake failure"  # ... with this ``description``
    flood: int = 0  # answer this many sendMessage calls 429 Too Many Requests
    retry_after: int = 30  # ... with this ``parameters.retry_after``
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
            body = {"ok": False, "error_code": self.failing, "description": self.description}
            return JSONResponse(body, status_code=self.failing)
        payload = await request.json()
        method = request.path_params["method"]
        self.calls.append((method, payload))
        if method != "sendMessage":
            return JSONResponse({"ok": True, "result": True})
        if self.flood > 0:
            self.flood -= 1
            too_many = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {self.retry_after}",
                "parameters": {"retry_after": self.retry_after},
            }
            return JSONResponse(too_many, status_code=429)
        self.sent.append(payload)
        result = {"message_id": len(self.sent), "chat": {"id": payload.get("chat_id")}}
        return JSONResponse({"ok": True, "result": result})


@contextlib.asynccontextmanager
async def fake_bot_api() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    async with local_server([Route("/bot{token}/{method}", fake.handle, methods=["POST"])]) as url:
        fake.url = url
        yield fake
