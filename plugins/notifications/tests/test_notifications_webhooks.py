"""Outbound webhooks: Standard Webhooks signatures with rotating secrets, retries, the delivery
log, and the SSRF guard (0 connections reach loopback / private / metadata targets)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from crm2_notifications.channels import ssrf
from crm2_notifications.channels.webhook import WebhookChannel, verify
from crm2_notifications.models import Delivery, DeliveryAttempt
from crm2_notifications.service.delivery import send_due
from crm2_notifications.testing import message_for
from notifications_kit import API, Notifications, delivered_updates_refused, shipped_rule
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm2_core.api import utcnow
from crm2_core.testing.servers import local_server


@dataclass
class Receiver:
    url: str = ""
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_next: int = 0
    redirect_to: str | None = None
    redirect_status: int = 307
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # status, headers

    async def handle(self, request: Request) -> Response:
        self.calls.append((dict(request.headers), await request.body()))
        if self.redirect_to:
            return Response(
                status_code=self.redirect_status, headers={"location": self.redirect_to}
            )
        if self.answers:
            status, headers = self.answers.pop(0)
            return Response(status_code=status, headers=headers)
        if self.fail_next:
            self.fail_next -= 1
            return Response(status_code=503)
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def receiver(host: str = "127.0.0.1") -> AsyncIterator[Receiver]:
    fake = Receiver()
    async with local_server([Route("/hook", fake.handle, methods=["POST"])], host=host) as url:
        fake.url = f"{url}/hook"
        yield fake


@dataclass
class Listener:
    """A bare TCP listener that counts the connections it accepts."""

    port: int = 0
    accepted: int = 0


@contextlib.asynccontextmanager
async def listener(host: str = "127.0.0.1") -> AsyncIterator[Listener]:
    counted = Listener()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counted.accepted += 1
        writer.close()

    server = await asyncio.start_server(accept, host, 0)
    counted.port = server.sockets[0].getsockname()[1]
    try:
        yield counted
    finally:
        server.close()
        await server.wait_closed()


async def _app(crm2_app_factory: Any, **settings: Any) -> Notifications:
    import ping_plugin

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": settings},
    )
    await shipped_rule(app, enabled=False)
    return Notifications(app)


async def test_signed_delivery_retry_rotation_and_log(crm2_app_factory: Any) -> None:
    n = await _app(crm2_app_factory, webhook_allow_private_targets=True)
    admin = await n.user("admin")
    async with receiver() as hook:
        made = await n.client.post(
            f"{API}/webhooks",
            json={"name": "erp", "url": hook.url, "event_types": ["ping.*"]},
            headers=admin.headers,
        )
        assert made.status_code == 201, made.text
        secret = made.json()["secrets"][0]
        assert secret.startswith("whsec_")

        hook.fail_next = 1
        await n.ping(admin, title="One")
        await n.settle()
        (delivery,) = await n.rows(Delivery)
        assert delivery.status == "pending" and delivery.last_status_code == 503
        await send_due(n.context, now=utcnow() + timedelta(hours=2))
        (delivery,) = await n.rows(Delivery)
        assert delivery.status == "delivered" and delivery.attempts == 2

        (h1, _b1), (h2, b2) = hook.calls
        assert h1["webhook-id"] == h2["webhook-id"] == str(delivery.id)  # same id on a retry
        assert verify(secret, h2, b2) and b'"type":"ping.thing.happened"' in b2
        codes = sorted((a.attempt, a.status_code) for a in await n.rows(DeliveryAttempt))
        assert codes == [(1, 503), (2, 204)]

        # rotation: while both secrets are listed, each signature verifies
        headers = {**admin.headers, "If-Match": f'"v{made.json()["version"]}"'}
        rotated = await n.client.patch(
            f"{API}/webhooks/{made.json()['id']}", json={"rotate_secret": True}, headers=headers
        )
        new_secret, old_secret = rotated.json()["secrets"]
        assert old_secret == secret
        await n.ping(admin, title="Two")
        await n.settle()
        headers3, body3 = hook.calls[-1]
        assert len(headers3["webhook-signature"].split()) == 2
        assert verify(new_secret, headers3, body3) and verify(old_secret, headers3, body3)
        assert not verify("whsec_" + "A" * 32, headers3, body3)


TARGETS = [
    "http://127.0.0.1:{port}/",
    "http://0x7f000001:{port}/",
    "http://2130706433:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::1]:{port}/",
    "http://127.0.0.1:5432/",
    "http://127.0.0.1:6379/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://0.0.0.0:{port}/",
]


async def test_the_ssrf_guard_refuses_every_internal_target(crm2_app_factory: Any) -> None:
    n = await _app(crm2_app_factory)  # the guard on: the default
    admin = await n.user("admin")
    channel = WebhookChannel()
    async with listener() as counted:
        for number, template in enumerate(TARGETS):
            url = template.format(port=counted.port)
            if number % 5 == 0:  # saving a subscription checks the URL with the same guard
                made = await n.client.post(
                    f"{API}/webhooks",
                    json={"name": "x", "url": url, "event_types": ["ping.*"]},
                    headers=admin.headers,
                )
                assert made.status_code == 422, (url, made.text)
            sent = await channel.send(
                message_for(channel, url, extra={"secrets": ["whsec_" + "A" * 32]}), n.context
            )
            assert not sent.ok and not sent.retry and "refused" in (sent.error or ""), url
        assert counted.accepted == 0


async def test_a_malformed_url_is_a_422_not_a_500(crm2_app_factory: Any) -> None:
    """schemathesis found it: urlsplit raises on an unbalanced bracket ("Invalid IPv6 URL")."""
    n = await _app(crm2_app_factory)
    admin = await n.user("admin")
    malformed = ("https://\u009a]\u00ce\u00dbQ", "http://[::1/", "https://a]b.example/")
    port_zero = "http://93.184.216.34:0/hook"  # was sent to port 80 instead
    for url in (*malformed, port_zero):
        made = await n.client.post(
            f"{API}/webhooks",
            json={"name": "bad", "url": url, "event_types": ["ping.*"]},
            headers=admin.headers,
        )
        assert made.status_code == 422, (url, made.text)
        assert made.headers["content-type"].startswith("application/problem+json")
    listed = await n.client.get(f"{API}/webhooks", headers=admin.headers)
    assert listed.json()["items"] == []


async def test_a_host_resolving_slowly_is_a_422_in_time_and_a_retried_send(
    crm2_app_factory: Any, monkeypatch: Any
) -> None:
    """The URL's host was resolved with no bound of ours: a dead name server held the save
    request for the system resolver's own retries (tens of seconds). Past RESOLVE_TIMEOUT
    the save is a 422 saying so, and a delivery's attempt fails to be retried (not "refused")."""
    import socket
    import time

    system = socket.getaddrinfo

    def slow_name_server(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "slow.example":  # a name server answering after 2 s
            time.sleep(2)
            return system("93.184.216.34", *args, **kwargs)
        return system(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_name_server)
    monkeypatch.setattr(ssrf, "RESOLVE_TIMEOUT", 0.5, raising=False)
    n = await _app(crm2_app_factory)
    admin = await n.user("admin")
    url = "https://slow.example/hook"
    started = time.monotonic()
    made = await n.client.post(
        f"{API}/webhooks",
        json={"name": "slow", "url": url, "event_types": ["ping.*"]},
        headers=admin.headers,
    )
    assert made.status_code == 422, made.text
    assert "'slow.example' did not resolve within 0.5 s" in made.json()["detail"], made.text
    assert time.monotonic() - started < 1.8
    listed = await n.client.get(f"{API}/webhooks", headers=admin.headers)
    assert listed.json()["items"] == []
    channel = WebhookChannel()
    sent = await channel.send(
        message_for(channel, url, extra={"secrets": ["whsec_" + "A" * 32]}), n.context
    )
    assert not sent.ok and sent.retry and "did not resolve" in (sent.error or ""), sent


async def test_a_webhook_name_differing_only_in_an_accents_case_is_taken(
    crm2_app_factory: Any,
) -> None:
    """Names are unique ignoring case, for every letter and on either database (SQLite's
    lower() folds ASCII only)."""
    n = await _app(crm2_app_factory, webhook_allow_private_targets=True)
    admin = await n.user("admin")
    made = []
    for name in ("Élan ERP", "élan erp"):
        made.append(
            await n.client.post(
                f"{API}/webhooks",
                json={"name": name, "url": "http://127.0.0.1:9/hook", "event_types": ["ping.*"]},
                headers=admin.headers,
            )
        )
    assert made[0].status_code == 201, made[0].text
    assert made[1].status_code == 422, made[1].text
    assert "already" in made[1].json()["detail"]


async def test_patch_null_is_refused(crm2_app_factory: Any) -> None:
    n = await _app(crm2_app_factory, webhook_allow_private_targets=True)
    admin = await n.user("admin")
    made = await n.client.post(
        f"{API}/webhooks",
        json={"name": "erp", "url": "http://127.0.0.1:9/hook", "event_types": ["ping.*"]},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    headers = {**admin.headers, "If-Match": f'"v{made.json()["version"]}"'}
    for body in ({"url": None}, {"event_types": None}, {"active": None}, {"rotate_secret": None}):
        refused = await n.client.patch(
            f"{API}/webhooks/{made.json()['id']}", json=body, headers=headers
        )
        assert refused.status_code == 422, (body, refused.text)


async def test_a_redirect_to_loopback_is_never_followed(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first hop is let through (127.0.0.2 stands in for a public host); its redirect
    to 127.0.0.1 is not followed at all: no connection there."""
    public = ssrf.forbidden
    monkeypatch.setattr(ssrf, "forbidden", lambda a: str(a) != "127.0.0.2" and public(a))
    n = await _app(crm2_app_factory)
    channel = WebhookChannel()
    async with listener() as counted, receiver("127.0.0.2") as hook:
        hook.redirect_to = f"http://127.0.0.1:{counted.port}/"
        sent = await channel.send(
            message_for(channel, hook.url, extra={"secrets": ["whsec_" + "A" * 32]}), n.context
        )
        assert not sent.ok and "not followed" in (sent.error or "")
        assert counted.accepted == 0


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_a_failed_attempt_naming_its_location(
    crm2_app_factory: Any, status: int
) -> None:
    """A webhook URL must answer itself: a 3xx (a 303 would otherwise turn the signed POST
    into a GET, or re-POST it) is one request, a retryable failure naming the Location."""
    n = await _app(crm2_app_factory, webhook_allow_private_targets=True)
    channel = WebhookChannel()
    async with receiver() as hook, receiver() as elsewhere:
        hook.redirect_to, hook.redirect_status = elsewhere.url, status
        sent = await channel.send(
            message_for(channel, hook.url, extra={"secrets": ["whsec_" + "A" * 32]}), n.context
        )
        assert not sent.ok and sent.retry and sent.status_code == status, sent
        assert "not followed" in (sent.error or "") and elsewhere.url in (sent.error or "")
        assert len(hook.calls) == 1 and elsewhere.calls == []


async def test_retry_after_of_a_429_or_503_is_honoured_capped_and_a_429_is_not_counted(
    crm2_app_factory: Any,
) -> None:
    from email.utils import format_datetime

    n = await _app(
        crm2_app_factory, webhook_allow_private_targets=True, max_attempts=2,
        retry_base_seconds=5, retry_max_seconds=10,
    )  # fmt: skip
    admin = await n.user("admin")
    async with receiver() as hook:
        made = await n.client.post(
            f"{API}/webhooks",
            json={"name": "erp", "url": hook.url, "event_types": ["ping.*"]},
            headers=admin.headers,
        )
        assert made.status_code == 201, made.text
        in_two_hours = format_datetime(utcnow() + timedelta(hours=2), usegmt=True)
        hook.answers = [
            (429, {"retry-after": "600"}),  # seconds
            (429, {"retry-after": "99999999999"}),  # absurd: a week at most
            (503, {"retry-after": in_two_hours}),  # an HTTP date
            (429, {"retry-after": "soon"}),  # unreadable: the usual backoff
        ]
        sent_at = utcnow()
        await n.ping(admin, title="One")
        await n.settle()
        waits = []
        for _ in range(4):
            (delivery,) = await n.rows(Delivery)
            assert delivery.status == "pending", delivery
            at = delivery.next_attempt_at.replace(tzinfo=sent_at.tzinfo)
            waits.append((at - sent_at).total_seconds())
            sent_at = at
            await send_due(n.context, now=at)
        assert 600 <= waits[0] < 610, waits
        assert 7 * 86400 - 60 < waits[1] <= 7 * 86400, waits
        assert 7100 < waits[2] <= 7201, waits
        assert waits[3] <= 10, waits
        # three 429s and one 503 with max_attempts=2: only the 503 counted, still alive
        (delivery,) = await n.rows(Delivery)
        assert delivery.status == "delivered" and delivery.attempts == 5, delivery


async def test_a_410_gone_switches_the_subscription_off_until_an_admin_turns_it_on(
    crm2_app_factory: Any,
) -> None:
    """Standard Webhooks: 410 means the receiver wants no more. Later events must not be
    POSTed there again and again (each one dead at once); the reason is shown."""
    n = await _app(crm2_app_factory, webhook_allow_private_targets=True)
    admin = await n.user("admin")
    async with receiver() as hook:
        made = await n.client.post(
            f"{API}/webhooks",
            json={"name": "erp", "url": hook.url, "event_types": ["ping.*"]},
            headers=admin.headers,
        )
        assert made.status_code == 201, made.text
        url = f"{API}/webhooks/{made.json()['id']}"
        hook.answers = [(410, {})]
        await n.ping(admin, title="One")
        await n.settle()
        (delivery,) = await n.rows(Delivery)
        assert delivery.status == "dead" and delivery.last_status_code == 410
        shown = await n.client.get(url, headers=admin.headers)
        assert shown.json()["active"] is False, shown.json()
        assert "410" in shown.json()["disabled_reason"]
        calls = len(hook.calls)
        await n.ping(admin, title="Two")
        await n.settle()
        assert len(hook.calls) == calls  # nothing more POSTed to a receiver that said Gone

        headers = {**admin.headers, "If-Match": shown.headers["ETag"]}
        back = await n.client.patch(url, json={"active": True}, headers=headers)
        assert back.status_code == 200, back.text
        assert back.json()["active"] is True and back.json()["disabled_reason"] is None
        await n.ping(admin, title="Three")
        await n.settle()
        assert len(hook.calls) == calls + 1


async def test_a_receiver_dripping_an_endless_answer_does_not_hold_the_worker(
    crm2_app_factory: Any,
) -> None:
    """Only the status and headers of a receiver's answer matter: its body is not read,
    so a receiver trickling bytes forever (or sending gigabytes) neither holds the
    sending worker past the first bytes nor fills its memory."""
    from starlette.responses import StreamingResponse

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 1024
            await asyncio.sleep(0.05)  # each read well within the timeout: never times out

    async def answer(request: Request) -> StreamingResponse:
        await request.body()
        return StreamingResponse(endless(), status_code=200)

    n = await _app(crm2_app_factory, webhook_allow_private_targets=True)
    async with local_server([Route("/hook", answer, methods=["POST"])]) as url:
        channel = WebhookChannel()
        message = message_for(channel, f"{url}/hook", extra={"secrets": ["whsec_" + "A" * 32]})
        async with asyncio.timeout(3):
            result = await channel.send(message, n.context)
    assert result.ok and result.status_code == 200, result


async def test_a_receiver_trickling_its_headers_is_cut_off_at_the_timeout(
    crm2_app_factory: Any,
) -> None:
    """httpx's timeout bounds each read: a receiver sending its status line and headers
    a line every 0.2 s never trips it, and held the delivery job for as long as it
    liked. The whole answer has ``webhook_timeout_seconds``."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read(65536)
            writer.write(b"HTTP/1.1 200 OK\r\n")
            for i in range(40):  # 8 seconds of headers
                writer.write(f"X-Slow-{i}: yes\r\n".encode())
                await writer.drain()
                await asyncio.sleep(0.2)
            writer.write(b"Content-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        n = await _app(
            crm2_app_factory, webhook_allow_private_targets=True, webhook_timeout_seconds=1
        )
        channel = WebhookChannel()
        url = f"http://127.0.0.1:{port}/hook"
        message = message_for(channel, url, extra={"secrets": ["whsec_" + "A" * 32]})
        started = asyncio.get_running_loop().time()
        async with asyncio.timeout(5):
            result = await channel.send(message, n.context)
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        server.close()
    assert not result.ok and result.retry and "within 1" in (result.error or ""), result


async def test_a_sent_webhook_whose_delivered_update_fails_goes_again_with_its_id(
    crm2_app_factory: Any,
) -> None:
    """At least once, for webhooks: a POST that went out but whose "delivered" the database
    refused is sent again once its claim is stale, under the same ``webhook-id`` — the
    receiver's key to drop the duplicate (Standard Webhooks)."""
    from crm2_notifications.service.delivery import RESENT, recover_stale

    n = await _app(crm2_app_factory, webhook_allow_private_targets=True)
    admin = await n.user("admin")
    async with receiver() as hook:
        made = await n.client.post(
            f"{API}/webhooks",
            json={"name": "erp", "url": hook.url, "event_types": ["ping.*"]},
            headers=admin.headers,
        )
        assert made.status_code == 201, made.text
        hook.fail_next = 1  # the handler's try fails: the job sends it
        await n.ping(admin, title="One")
        await n.settle()
        later = utcnow() + timedelta(hours=2)
        async with delivered_updates_refused(n):
            with pytest.raises(Exception, match="delivered refused"):
                await send_due(n.context, now=later)
        (delivery,) = await n.rows(Delivery)
        assert delivery.status == "sending" and len(hook.calls) == 2

        async with n.context.session_factory() as session:
            await recover_stale(session, later + timedelta(minutes=30))  # the claim is stale
            await session.commit()
        (delivery,) = await n.rows(Delivery)
        assert delivery.status == "pending" and delivery.last_error == RESENT
        await send_due(n.context, now=later + timedelta(minutes=30))
        (delivery,) = await n.rows(Delivery)
        assert delivery.status == "delivered"
        assert [h["webhook-id"] for h, _b in hook.calls] == [str(delivery.id)] * 3


async def test_a_6to4_address_wrapping_an_internal_one_is_refused(crm2_app_factory: Any) -> None:
    """2002::/16 is "global", but its next 32 bits are an IPv4 address a 6to4 relay (or a
    host's own 6to4 tunnel) delivers to: loopback, private or metadata ones are refused."""
    n = await _app(crm2_app_factory)  # the guard on: the default
    admin = await n.user("admin")
    wrapped = ("2002:7f00:1::1", "2002:a00:1::", "2002:c0a8:101::", "2002:a9fe:a9fe::")
    for address in wrapped:
        made = await n.client.post(
            f"{API}/webhooks",
            json={"name": "x", "url": f"http://[{address}]/hook", "event_types": ["ping.*"]},
            headers=admin.headers,
        )
        assert made.status_code == 422, (address, made.text)
    assert not ssrf.forbidden(ipaddress.ip_address("2002:5db8:d822::1"))  # 93.184.216.34
