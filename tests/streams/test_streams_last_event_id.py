"""Issue 9 item 8: a ``Last-Event-ID`` beyond the log's end is refused, not silently kept.

Resuming after a position the log has not reached would drop every live event
up to it; a huge one used to reach the database and log a failure.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
from sse_helpers import post_item

from crm2_core.testing import Crm2TestApp

URL = "/api/v1/streams/probe"


async def test_last_event_id_beyond_the_log_is_400(
    probe_app: Callable[..., Awaitable[Crm2TestApp]], caplog: pytest.LogCaptureFixture
) -> None:
    app = await probe_app()
    headers = await app.login("admin")
    await post_item(app, headers, 1)
    await app.settle_events()
    top = await app.context.streams.source.top()
    assert top >= 1
    caplog.set_level(logging.WARNING)
    for beyond in (top + 1, top + 10_000, 2**63 - 1, 2**70):
        response = await app.client.get(URL, headers={**headers, "Last-Event-ID": str(beyond)})
        assert response.status_code == 400, (beyond, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"] == "urn:crm2:problem:bad-request"
        assert "beyond the end of the event log" in body["detail"]
    by_query = await app.client.get(f"{URL}?last_event_id={top + 5}", headers=headers)
    assert by_query.status_code == 400, by_query.text
    huge_query = await app.client.get(f"{URL}?last_event_id={2**70}", headers=headers)
    assert huge_query.status_code == 422, huge_query.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_last_event_id_takes_plain_ascii_digits_only(
    probe_app: Callable[..., Awaitable[Crm2TestApp]],
) -> None:
    """``int()`` took ``1_0``, ``+1``, Unicode digits and spaces: none is an id this server
    sends. The header is a 400 naming it, the query parameter a 422 (as any query value);
    HTTP's own whitespace around a header value is no part of it (RFC 9110 5.5)."""
    app = await probe_app()
    headers = await app.login("admin")
    await post_item(app, headers, 1)
    await app.settle_events()
    assert await app.context.streams.source.top() >= 1
    for bad in ("1_0", "+1", "-0", "1.0", "0x1", "\u0661", "1\u00a0", "\u20031", "1 1", "9" * 101):
        raw = bad.encode()  # as sent: UTF-8 bytes
        response = await app.client.get(URL, headers={**headers, "Last-Event-ID": raw})
        assert response.status_code == 400, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "ASCII digits only" in response.json()["detail"], bad
        assert response.json()["type"] == "urn:crm2:problem:bad-request"
        by_query = await app.client.get(URL, params={"last_event_id": bad}, headers=headers)
        assert by_query.status_code == 422, (bad, by_query.text)
        assert by_query.json()["errors"][0]["loc"] == ["query", "last_event_id"]


async def test_the_document_bounds_last_event_id_as_the_server_does(
    probe_app: Callable[..., Awaitable[Crm2TestApp]],
) -> None:
    """The digits-only validator once pushed the bounds out of the parameter's schema
    (``ge`` beside its ``anyOf``, no ``minimum``): schemathesis then sent ``-5`` as a
    valid request and met a 422."""
    app = await probe_app()
    document = (await app.client.get("/openapi.json")).json()
    parameters = document["paths"]["/api/v1/streams/{channel}"]["get"]["parameters"]
    (schema,) = (p["schema"] for p in parameters if p["name"] == "last_event_id")
    assert "ge" not in schema and "le" not in schema
    (integer,) = (s for s in schema["anyOf"] if s.get("type") == "integer")
    assert integer["minimum"] == 0 and integer["maximum"] == 2**63 - 1
