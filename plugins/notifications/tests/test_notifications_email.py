"""The ``email`` channel against a real SMTP server on 127.0.0.1 (aiosmtpd): the channel
contract, and a rule's notification arriving as multipart text + HTML after a login."""

from __future__ import annotations

from typing import Any

import pytest
from crm2_notifications.channels.email import EmailChannel
from crm2_notifications.hookspecs import NotificationChannel
from crm2_notifications.models import Delivery
from crm2_notifications.testing import ChannelContract
from notifications_kit import Notifications, SmtpServer, delivered_updates_refused, shipped_rule


class TestEmailChannel(ChannelContract):
    @pytest.fixture
    def channel(self) -> NotificationChannel:
        return EmailChannel()

    @pytest.fixture
    async def channel_context(self, crm2_app_factory: Any, smtp_server: SmtpServer) -> Any:
        app = await crm2_app_factory(
            plugins=["notifications"],
            plugin_settings={"notifications": smtp_server.settings()},
        )
        return app.context

    @pytest.fixture
    def address(self) -> str:
        return "anna@example.com"

    @pytest.fixture
    def received(self, smtp_server: SmtpServer) -> Any:
        async def texts() -> list[str]:
            return smtp_server.mailbox.texts()

        return texts

    @pytest.fixture
    def service_down(self, smtp_server: SmtpServer) -> Any:
        return smtp_server.stop


@pytest.fixture
async def with_smtp(crm2_app_factory: Any, smtp_server: SmtpServer) -> Notifications:
    import ping_plugin

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": smtp_server.settings(public_url="https://crm.example")},
    )
    await shipped_rule(app, enabled=False)
    return Notifications(app)


async def test_a_rule_sends_multipart_mail_to_the_owner(
    with_smtp: Notifications, smtp_server: SmtpServer
) -> None:
    admin, owner = await with_smtp.users("admin", "agent")
    await with_smtp.rule(
        admin,
        template={
            "title": "Won: {{ data.title }}",
            "body": "Value <{{ data.value }}>",
            "link": "/ping/{{ subject }}",
        },
        channels=["inapp", "email"],
    )
    await with_smtp.ping(admin, title="Fleet", value=900, owner_id=owner.id)
    await with_smtp.settle()

    (mail,) = smtp_server.mailbox.messages
    assert smtp_server.mailbox.logins == [("crm2", "s3cret")]
    assert smtp_server.mailbox.envelopes[0][1] == [owner.email]
    assert mail["Subject"] == "Won: Fleet" and mail["From"] == "crm2 <crm2@example.com>"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    html = mail.get_body(("html",)).get_content()  # type: ignore[attr-defined]
    assert "Value <900>" in text and "https://crm.example/ping/" in text
    assert "Value &lt;900&gt;" in html and 'href="https://crm.example/ping/' in html
    (delivery,) = await with_smtp.rows(Delivery)
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert mail["Message-ID"] == f"<{delivery.id}@crm2.notifications>"


async def test_a_down_server_is_retried_then_dead_lettered(
    with_smtp: Notifications, smtp_server: SmtpServer
) -> None:
    from datetime import timedelta

    from crm2_notifications.service.delivery import send_due

    from crm2_core.api import utcnow

    admin, owner = await with_smtp.users("admin", "agent")
    await with_smtp.rule(admin, channels=["email"])
    await smtp_server.stop()
    await with_smtp.ping(admin, owner_id=owner.id)
    await with_smtp.settle()
    (delivery,) = await with_smtp.rows(Delivery)
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_error
    later = utcnow()
    for _ in range(10):  # max_attempts is 6: the rest find nothing due
        later += timedelta(days=1)
        await send_due(with_smtp.context, now=later)
    (delivery,) = await with_smtp.rows(Delivery)
    assert delivery.status == "dead" and delivery.attempts == 6
    await with_smtp.settle()
    admin_log = await with_smtp.client.get(
        "/api/v1/notifications/deliveries", params={"status": "dead"}, headers=admin.headers
    )
    (logged,) = admin_log.json()["items"]
    assert logged["attempts"] == 6 and logged["channel"] == "email"
    events = [e.type for e in await with_smtp.rows(_event_record())]
    assert events.count("notifications.delivery.failed") == 5
    assert events.count("notifications.delivery.dead_lettered") == 1


def _event_record() -> Any:
    from crm2_core.testing import EventRecord

    return EventRecord


async def test_starttls_and_login_against_a_server_that_requires_them(
    crm2_app_factory: Any, tls_smtp_server: SmtpServer
) -> None:
    from crm2_notifications.testing import message_for

    settings = tls_smtp_server.settings(smtp_starttls=True, smtp_ca_file=tls_smtp_server.ca_file)
    app = await crm2_app_factory(
        plugins=["notifications"], plugin_settings={"notifications": settings}
    )
    channel = EmailChannel()
    sent = await channel.send(message_for(channel, "anna@example.com"), app.context)
    assert sent.ok, sent
    assert tls_smtp_server.mailbox.logins == [("crm2", "s3cret")]
    assert len(tls_smtp_server.mailbox.messages) == 1
    # without STARTTLS the same server refuses to take the mail
    plain = await crm2_app_factory(
        plugins=["notifications"], plugin_settings={"notifications": tls_smtp_server.settings()}
    )
    refused = await channel.send(message_for(channel, "anna@example.com"), plain.context)
    assert not refused.ok and len(tls_smtp_server.mailbox.messages) == 1


async def test_a_notifications_delivery_attempts_are_shown_to_its_owner_and_admins(
    with_smtp: Notifications, smtp_server: SmtpServer
) -> None:
    from datetime import timedelta

    from crm2_notifications.service.delivery import send_due

    from crm2_core.api import utcnow

    admin, owner, other = await with_smtp.users("admin", "agent", "agent")
    await with_smtp.rule(admin, channels=["inapp", "email"])
    await smtp_server.stop()
    await with_smtp.ping(admin, owner_id=owner.id)
    await with_smtp.settle()
    (note,) = await with_smtp.feed(owner)
    url = f"/api/v1/notifications/feed/{note['id']}/deliveries"

    mine = await with_smtp.client.get(url, headers=owner.headers)
    assert mine.status_code == 200, mine.text
    (email,) = mine.json()["items"]
    assert email["channel"] == "email" and email["status"] == "pending"
    assert email["attempts"] == 1 and email["next_attempt_at"] is not None
    (attempt,) = email["log"]
    assert attempt["attempt"] == 1 and attempt["ok"] is False and attempt["error"]
    assert email["last_error"] == attempt["error"]
    as_admin = await with_smtp.client.get(url, headers=admin.headers)
    assert as_admin.status_code == 200 and as_admin.json() == mine.json()
    for who, path in ((other, url), (owner, url.replace(note["id"], str(other.id)))):
        hidden = await with_smtp.client.get(path, headers=who.headers)
        assert hidden.status_code == 404
        assert hidden.headers["content-type"] == "application/problem+json"
    assert (
        await with_smtp.client.get(url.replace(note["id"], "x"), headers=owner.headers)
    ).status_code == 422

    later = utcnow()
    for _ in range(6):
        later += timedelta(days=1)
        await send_due(with_smtp.context, now=later)
    (email,) = (await with_smtp.client.get(url, headers=owner.headers)).json()["items"]
    assert email["status"] == "dead" and email["attempts"] == 6
    assert email["next_attempt_at"] is None
    assert [a["attempt"] for a in email["log"]] == [1, 2, 3, 4, 5, 6]

    spec = (await with_smtp.client.get("/openapi.json")).json()
    declared = spec["paths"]["/api/v1/notifications/feed/{notification_id}/deliveries"]["get"]
    schema = declared["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/NotificationDeliveries")
    assert "404" in declared["responses"] or "4XX" in declared["responses"]


async def test_mail_waits_while_email_is_switched_off_instead_of_dying(
    notifications: Notifications,
) -> None:
    from datetime import timedelta

    from crm2_notifications.service.delivery import send_due

    from crm2_core.api import utcnow

    admin, owner = await notifications.users("admin", "agent")  # no SMTP host: e-mail is off
    await notifications.rule(admin, channels=["email"])
    await notifications.ping(admin, owner_id=owner.id)
    await notifications.settle()
    later = utcnow()
    for _ in range(10):  # more than max_attempts (6) times, a day apart
        later += timedelta(days=1)
        await send_due(notifications.context, now=later)
    (delivery,) = await notifications.rows(Delivery)
    assert delivery.status == "pending" and delivery.attempts == 0, delivery
    assert "not available" in (delivery.last_error or "")


@pytest.mark.parametrize("breaker", ["\r", "\r\n", "\v", "\f", "\x1c", "\x85", "\u2028", "\u2029"])
def test_a_title_with_any_line_break_still_makes_a_one_line_subject(breaker: str) -> None:
    """The title is event data a user typed: a carriage return (or any other character
    Python splits lines at) in the Subject made every attempt fail until dead."""
    from crm2_notifications.channels.email import build
    from crm2_notifications.testing import message_for

    title = f"Deal{breaker}won"
    mail = build(message_for(EmailChannel(), "anna@example.com", title=title), "crm2 <n@x>")
    assert mail["Subject"] == "Deal won"
    assert b"Subject: Deal won\n" in mail.as_bytes()


@pytest.mark.parametrize("breaker", ["\n", "\r\n", "\u2028"])
def test_a_recipients_name_with_a_line_break_still_makes_a_one_line_to(breaker: str) -> None:
    """A user's full name may hold a line break (the account API keeps inner ones): in
    the To header it made every e-mail to them fail until dead, never injected a header."""
    import uuid

    from crm2_notifications.channels.email import build
    from crm2_notifications.hookspecs import Recipient
    from crm2_notifications.testing import message_for

    who = Recipient(user_id=uuid.uuid4(), email="anna@example.com", full_name=f"Anna{breaker}Berg")
    mail = build(message_for(EmailChannel(), "anna@example.com", recipient=who), "crm2 <n@x>")
    assert mail["To"] == "Anna Berg <anna@example.com>"
    assert b"To: Anna Berg <anna@example.com>\n" in mail.as_bytes()


async def test_a_refused_login_is_a_misconfigured_channel_retried_not_dead_lettered(
    crm2_app_factory: Any, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """535 on AUTH is the setting's fault, not the message's: the channel answers a
    retryable failure naming the misconfiguration, logged for an admin."""
    from crm2_notifications.channels.email import MISCONFIGURED
    from crm2_notifications.testing import message_for

    app = await crm2_app_factory(
        plugins=["notifications"],
        plugin_settings={"notifications": smtp_server.settings(smtp_password="wrong")},
    )
    channel = EmailChannel()
    with caplog.at_level("WARNING", logger="crm2_notifications.channels.email"):
        sent = await channel.send(message_for(channel, "anna@example.com"), app.context)
    assert not sent.ok and sent.retry, sent
    assert sent.status_code == 535 and MISCONFIGURED in (sent.error or "")
    assert any(MISCONFIGURED in r.getMessage() for r in caplog.records)
    assert smtp_server.mailbox.messages == []


def test_a_long_subject_is_cut_on_a_grapheme_edge() -> None:
    """A family emoji (seven code points) straddling the 250th character is kept whole
    or left out, never split into a broken glyph."""
    from crm2_notifications.channels.email import build
    from crm2_notifications.testing import message_for

    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
    title = "x" * 247 + family + " tail"
    mail = build(message_for(EmailChannel(), "a@example.com", title=title), "crm2@x")
    assert mail["Subject"] == "x" * 247


@pytest.fixture
def picky_smtp_server() -> Any:
    """An SMTP server that takes messages of at most 5,000 bytes (``SIZE 5000``) and greylists
    ``later@example.com`` (451 to RCPT TO, as a greylisting server answers a first try)."""
    from aiosmtpd.controller import Controller
    from notifications_kit import Mailbox, free_port

    class Picky(Mailbox):
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            if address == "later@example.com":
                return "451 4.7.1 Greylisted, try again later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    mailbox = Picky()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        data_size_limit=5000,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield SmtpServer(port=controller.port, mailbox=mailbox, controller=controller)
    finally:
        controller.stop()


async def test_a_message_over_the_servers_size_is_dead_at_once_not_misconfigured(
    crm2_app_factory: Any, picky_smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """552 to MAIL FROM (RFC 1870: the declared SIZE is over the server's limit) refuses
    this message, not the settings: no retry, and no "misconfigured" warning."""
    from crm2_notifications.channels.email import MISCONFIGURED
    from crm2_notifications.testing import message_for

    settings = picky_smtp_server.settings(smtp_username="")
    app = await crm2_app_factory(
        plugins=["notifications"], plugin_settings={"notifications": settings}
    )
    channel = EmailChannel()
    with caplog.at_level("WARNING", logger="crm2_notifications.channels.email"):
        big = message_for(channel, "anna@example.com", body="x" * 10_000)
        sent = await channel.send(big, app.context)
    assert not sent.ok and not sent.retry, sent
    assert sent.status_code == 552 and MISCONFIGURED not in (sent.error or "")
    assert not any(MISCONFIGURED in r.getMessage() for r in caplog.records)


async def test_a_greylisted_recipient_is_retried_not_dead_lettered(
    crm2_app_factory: Any, picky_smtp_server: SmtpServer
) -> None:
    """A 4xx to RCPT TO (greylisting's 451) means "try later" (RFC 5321 4.2.1): retried."""
    from crm2_notifications.testing import message_for

    settings = picky_smtp_server.settings(smtp_username="")
    app = await crm2_app_factory(
        plugins=["notifications"], plugin_settings={"notifications": settings}
    )
    channel = EmailChannel()
    sent = await channel.send(message_for(channel, "later@example.com"), app.context)
    assert not sent.ok and sent.retry and sent.status_code == 451, sent


async def test_a_server_trickling_its_replies_is_cut_off(crm2_app_factory: Any) -> None:
    """smtplib's timeout bounds each read: a server answering EHLO with a line every
    0.2 s never trips it, and held the thread (and the delivery job awaiting it) for as
    long as it liked. The whole conversation has a deadline; the attempt is retried."""
    import asyncio
    import contextlib

    from crm2_notifications.testing import message_for

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(b"220 slow.example ESMTP\r\n")
            await reader.readline()  # EHLO
            for i in range(50):  # 10 seconds of "250-" lines
                writer.write(f"250-EXT{i}\r\n".encode())
                await writer.drain()
                await asyncio.sleep(0.2)
            writer.write(b"250 OK\r\n")
            await writer.drain()
            await reader.read()
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "smtp_timeout_seconds": 0.5,
        }
        app = await crm2_app_factory(
            plugins=["notifications"], plugin_settings={"notifications": settings}
        )
        channel = EmailChannel()
        started = asyncio.get_running_loop().time()
        async with asyncio.timeout(6):
            result = await channel.send(message_for(channel, "anna@example.com"), app.context)
        assert asyncio.get_running_loop().time() - started < 4
    finally:
        server.close()
    assert not result.ok and result.retry, result


async def test_a_sent_mail_whose_delivered_update_fails_is_never_sent_again(
    with_smtp: Notifications, smtp_server: SmtpServer
) -> None:
    """At most once: the deliveries job writes (its own transaction) that the mail is in
    flight before handing it to SMTP; the mail went out but the database refused its
    "delivered". The stale claim is not sent again: it is dead-lettered as unknown."""
    from datetime import timedelta

    from crm2_notifications.service.delivery import UNKNOWN, send_due

    from crm2_core.api import utcnow

    admin, owner = await with_smtp.users("admin", "agent")
    await with_smtp.rule(admin, channels=["email"])
    smtp_server.mailbox.refuse = "451 4.3.0 try again later"  # the handler's try fails
    await with_smtp.ping(admin, owner_id=owner.id)
    await with_smtp.settle()
    smtp_server.mailbox.refuse = None
    later = utcnow() + timedelta(hours=1)
    async with delivered_updates_refused(with_smtp):
        with pytest.raises(Exception, match="delivered refused"):
            await send_due(with_smtp.context, now=later)
    assert len(smtp_server.mailbox.messages) == 1
    (delivery,) = await with_smtp.rows(Delivery)
    assert delivery.status == "sending"

    for hours in (2, 24, 48):
        await send_due(with_smtp.context, now=later + timedelta(hours=hours))
    assert len(smtp_server.mailbox.messages) == 1
    (delivery,) = await with_smtp.rows(Delivery)
    assert (delivery.status, delivery.last_error) == ("dead", UNKNOWN)
    # in the delivery log and told like any dead letter (the first attempt was the 451)
    assert delivery.attempts == 2
    await with_smtp.settle()
    dead = [
        e
        for e in await with_smtp.rows(_event_record())
        if e.type == "notifications.delivery.dead_lettered"
    ]
    assert [str(e.subject) for e in dead] == [str(delivery.id)]


async def test_a_mail_the_send_handler_sent_unrecorded_is_not_sent_again(
    with_smtp: Notifications, smtp_server: SmtpServer
) -> None:
    """The ``send`` handler (PostgreSQL) sends in transactions of its own: the mail went out,
    its "delivered" was refused and the handler failed — its retries, and the job, do not
    send it again (at most once). On SQLite the sends share the handler's transaction
    (one writer), so a retried handler may send again: documented."""
    from datetime import timedelta

    from crm2_notifications.service.delivery import UNKNOWN, send_due

    from crm2_core.api import utcnow

    async with with_smtp.context.session_factory() as session:
        if session.bind.dialect.name != "postgresql":
            pytest.skip("SQLite: the send handler's sends share its transaction")
    admin, owner = await with_smtp.users("admin", "agent")
    await with_smtp.rule(admin, channels=["email"])
    async with delivered_updates_refused(with_smtp):
        await with_smtp.ping(admin, owner_id=owner.id)
        for _ in range(3):
            await with_smtp.settle()
    await with_smtp.settle()
    for hours in (1, 24):
        await send_due(with_smtp.context, now=utcnow() + timedelta(hours=hours))
    assert len(smtp_server.mailbox.messages) == 1
    (delivery,) = await with_smtp.rows(Delivery)
    assert (delivery.status, delivery.last_error) == ("dead", UNKNOWN)
