"""JSON log lines with correlation fields, and secrets masked whatever the format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence

import probe_plugin
import pytest
from fastapi import APIRouter

from crm2_core.auth import CurrentPrincipal
from crm2_core.observability.logs import (
    REDACTED,
    JsonFormatter,
    RedactingFilter,
    TextFormatter,
    configure_logging,
    redact,
)
from crm2_core.testing.app import TEST_JWT_SECRET, TEST_PASSWORD
from crm2_hookspecs import PluginManifest, hookimpl

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Root-logger records at INFO, formatted as crm2 formats them in json mode."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def entries(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


class Chatty:
    """A plugin whose route logs a line (with a secret in it) while serving."""

    manifest = PluginManifest(name="chatty", title="Chatty")
    router = APIRouter(prefix="/api/v1/chatty")

    @staticmethod
    @router.get("/hello")
    async def hello(principal: CurrentPrincipal) -> dict[str, str]:
        logging.getLogger("crm2_chatty").info(
            "hello %s, password=%s", principal.name, TEST_PASSWORD
        )
        return {"ok": "yes"}

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        return [self.router]


async def test_a_request_log_line_carries_request_and_principal_ids(
    crm2_app_factory, json_lines: io.StringIO
) -> None:
    app = await crm2_app_factory(extra_plugins=(Chatty(),))
    headers = await app.login("admin")

    response = await app.client.get(
        "/api/v1/chatty/hello", headers={**headers, "X-Request-ID": "req-42"}
    )

    assert response.status_code == 200
    [line] = [e for e in entries(json_lines) if e["logger"] == "crm2_chatty"]
    assert line["request_id"] == "req-42"
    me = await app.client.get("/api/v1/auth/me", headers=headers)
    assert line["principal_id"] == me.json()["id"]
    assert line["level"] == "INFO"
    assert TEST_PASSWORD not in json_lines.getvalue()
    assert f"password={REDACTED}" in line["message"]


async def test_a_handler_log_line_names_plugin_handler_and_event(
    crm2_app_factory, json_lines: io.StringIO
) -> None:
    probe_plugin.FAILURES["*"] = 1  # one failure: the handler logs it, then applies
    app = await crm2_app_factory(extra_plugins=(probe_plugin,))
    headers = await app.login("admin")
    created = await app.client.post("/api/v1/probe/items", json={"n": 1}, headers=headers)
    await app.settle_events()

    failures = [e for e in entries(json_lines) if e["logger"] == "crm2_core.events.handlers"]
    assert failures, json_lines.getvalue()
    assert failures[0]["plugin"] == "probe"
    assert failures[0]["handler"] == "probe.record"
    assert failures[0]["event_id"] == created.json()["event_id"]
    assert "RuntimeError: probe failure 1" in failures[0]["exception"]
    assert "request_id" not in failures[0]  # the relay runs outside the request


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {JWT}", JWT),
        (f"token {JWT} rejected", JWT),
        ("headers={'authorization': 'Bearer abcdefgh12345678'}", "abcdefgh12345678"),
        ("login with password=hunter2hunter2 failed", "hunter2hunter2"),
        ('{"password": "s3cret-value"}', "s3cret-value"),
        ("api key crm2_AbCdEfGhIjKlMnOpQrStUv given", "crm2_AbCdEfGhIjKlMnOpQrStUv"),
        ("amqp://crm2:rabbit-pass@rabbitmq:5672/crm2", "rabbit-pass"),
        (f"CRM2_AUTH_JWT_SECRET={TEST_JWT_SECRET}", TEST_JWT_SECRET),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    cleaned = redact(text)

    assert secret not in cleaned
    assert REDACTED in cleaned


def test_ordinary_text_is_left_alone() -> None:
    text = "deal 5f0c moved to stage won by user 42 (took 12 ms)"
    assert redact(text) == text


def test_secrets_in_a_traceback_are_masked() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)

    line = json.loads(JsonFormatter().format(record))
    assert JWT not in line["exception"]
    assert "ValueError" in line["exception"]


def test_text_format_appends_the_fields() -> None:
    record = logging.LogRecord("crm2_x", logging.INFO, __file__, 1, "moved %s", ("d1",), None)
    RedactingFilter().filter(record)
    record.crm2 = {"request_id": "r1"}

    assert TextFormatter().format(record) == "INFO crm2_x: moved d1  [request_id=r1]"


def test_configure_logging_installs_one_json_handler(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", "json", force=True)
        configure_logging("INFO", "json", force=True)  # replaces, never doubles
        logging.getLogger("crm2_test").info("ready")
        ours = [h for h in root.handlers if h.get_name() == "crm2"]
        assert len(ours) == 1
    finally:
        for handler in [h for h in root.handlers if h.get_name() == "crm2"]:
            root.removeHandler(handler)
        root.handlers[:] = before[0]
        root.setLevel(before[1])
    err = capsys.readouterr().err.strip().splitlines()
    assert json.loads(err[-1])["message"] == "ready"


def test_configure_logging_leaves_a_host_applications_handlers_alone() -> None:
    root = logging.getLogger()
    assert root.handlers  # pytest's capture handler is there
    assert configure_logging("INFO", "json") is None


def test_the_run_log_scan_finds_a_leaked_token_and_password() -> None:
    from crm2_core.testing.secret_scan import find_leaks

    lines = [
        '{"message": "login ok"}',
        f'{{"message": "issued {JWT}"}}',
        '{"message": "password is correct horse battery staple"}',
        '{"message": "Authorization: Bearer [REDACTED]"}',
        '{"message": "Authorization: Bearer abcdefgh12345678"}',
    ]

    leaks = find_leaks(lines, [TEST_PASSWORD])

    assert [leak.split(":")[0] for leak in leaks] == ["line 2", "line 3", "line 5"]
