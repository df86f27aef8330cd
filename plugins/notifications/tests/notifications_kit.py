"""Shared fixtures of the notifications suite: an app with the plugin (and the ping test
plugin), a real SMTP server (aiosmtpd) and a fake Telegram Bot API, both on 127.0.0.1.

Test modules import from ``notifications_kit`` (never from ``conftest``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import ping_plugin
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from crm2_core.testing import Crm2TestApp, SignedInUser

API = "/api/v1/notifications"
User = SignedInUser


# -- SMTP ------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server received; ``arrived`` is set on every message."""

    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    logins: list[tuple[str, str]] = field(default_factory=list)
    refuse: str | None = None  # an SMTP reply (e.g. "451 ..."): the server refuses DATA

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return self.refuse
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.arrived.set()
        return "250 OK"

    def texts(self) -> list[str]:
        """Each message as subject + text body, decoded."""
        found = []
        for message in self.messages:
            body = message.get_body(("plain",))  # type: ignore[attr-defined]
            text = body.get_content() if body is not None else ""
            found.append(f"{message['Subject']}\n{text}")
        return found


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox
    controller: Any
    ca_file: str = ""

    async def stop(self) -> None:
        self.controller.stop()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The plugin settings that point the e-mail channel here."""
        return {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_starttls": False,
            "smtp_username": "crm2",
            "smtp_password": "s3cret",
            "smtp_timeout_seconds": 5,
            "smtp_from": "crm2 <crm2@example.com>",
            **extra,
        }


def _authenticator(mailbox: Mailbox) -> Callable[..., Any]:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            mailbox.logins.append((login, password))
            # handled=False: the server answers a refusal with 535 (True: it says nothing)
            return AuthResult(success=login == "crm2" and password == "s3cret", handled=False)
        return AuthResult(success=False, handled=False)

    return check


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (the test's own CA: the file is its bundle)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(loopback, False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = directory / "smtp.pem", directory / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))  # fmt: skip
    return cert_file, key_file


@pytest.fixture
def tls_smtp_server(tmp_path: Path) -> Any:
    """An SMTP server that requires STARTTLS before AUTH and MAIL."""
    import ssl

    cert_file, key_file = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    mailbox = Mailbox()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=free_port(), authenticator=_authenticator(mailbox),
        tls_context=tls, require_starttls=True,
    )  # fmt: skip
    controller.start()
    try:
        server = SmtpServer(port=controller.port, mailbox=mailbox, controller=controller)
        server.ca_file = str(cert_file)
        yield server
    finally:
        with contextlib.suppress(Exception):
            controller.stop()


@pytest.fixture
def smtp_server() -> Any:
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_authenticator(mailbox),
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield SmtpServer(port=controller.port, mailbox=mailbox, controller=controller)
    finally:
        with contextlib.suppress(Exception):
            controller.stop()


# -- the app ---------------------------------------------------------------------------


class Notifications:
    """The app plus the helpers every notifications test needs."""

    def __init__(self, app: Crm2TestApp) -> None:
        self.app = app
        self.client = app.client

    @property
    def context(self) -> Any:
        return self.app.context

    async def user(self, *roles: str) -> User:
        return await self.app.user(*roles)

    async def settle(self) -> None:
        """Events, then the events their handlers publish (rules → deliveries queued → sent).

        ``settle_events`` waits for one round; an event a handler publishes is relayed
        by the app's own relay, maybe after that round ended.
        """
        for _ in range(3):
            await self.app.settle_events()

    async def users(self, *roles: str) -> list[User]:
        return [await self.app.user(role) for role in roles]

    async def ping(self, user: User, **fields: Any) -> dict[str, Any]:
        body = {
            "title": "Thing",
            **{k: str(v) if isinstance(v, uuid.UUID) else v for k, v in fields.items()},
        }
        response = await self.client.post("/api/v1/ping/things", json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def feed(self, user: User, **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get(f"{API}/feed", params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def rule(self, admin: User, **body: Any) -> dict[str, Any]:
        payload = {
            "name": f"rule {uuid.uuid4().hex[:6]}",
            "event_type": "ping.thing.happened",
            "template": {"title": "{{ data.title }}"},
            "recipients": {"record": {"kind": "ping.thing"}},
            **body,
        }
        response = await self.client.post(f"{API}/rules", json=payload, headers=admin.headers)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def rows(self, model: type[Any]) -> list[Any]:
        async with self.context.session_factory() as session:
            return list((await session.execute(select(model))).scalars())


@pytest.fixture
async def notifications(crm2_app_factory: Any) -> Notifications:
    """Core + notifications + the ping test plugin; its shipped rule switched off."""
    ping_plugin.THINGS.clear()
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["notifications", "ping"], extra_plugins=(ping_plugin,)
    )
    await shipped_rule(app, enabled=False)
    return Notifications(app)


async def shipped_rule(app: Crm2TestApp, *, enabled: bool) -> None:
    from crm2_notifications.models import Rule
    from sqlalchemy import update

    async with app.context.session_factory() as session:
        await session.execute(
            update(Rule).where(Rule.builtin_key == "ping:thing-happened").values(enabled=enabled)  # type: ignore[arg-type]
        )
        await session.commit()


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@contextlib.asynccontextmanager
async def delivered_updates_refused(n: Notifications) -> AsyncIterator[None]:
    """While inside, the database refuses to mark any delivery ``delivered`` (as one gone
    down just after a message went out would)."""
    from sqlalchemy import text

    table = "notifications_delivery"
    async with n.context.session_factory() as session:
        if session.bind.dialect.name == "sqlite":
            create = [
                f"CREATE TRIGGER refuse_delivered BEFORE UPDATE ON {table} "
                "WHEN NEW.status = 'delivered' "
                "BEGIN SELECT RAISE(ABORT, 'delivered refused'); END"
            ]
            drop = ["DROP TRIGGER IF EXISTS refuse_delivered"]
        else:
            create = [
                "CREATE OR REPLACE FUNCTION refuse_delivered() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'delivered refused'; END $$",
                f"CREATE TRIGGER refuse_delivered BEFORE UPDATE ON {table} "
                "FOR EACH ROW WHEN (NEW.status = 'delivered') "
                "EXECUTE FUNCTION refuse_delivered()",
            ]
            drop = [
                f"DROP TRIGGER IF EXISTS refuse_delivered ON {table}",
                "DROP FUNCTION IF EXISTS refuse_delivered()",
            ]
        for statement in create:
            await session.execute(text(statement))
        await session.commit()
    try:
        yield
    finally:
        async with n.context.session_factory() as session:
            for statement in drop:
                await session.execute(text(statement))
            await session.commit()
