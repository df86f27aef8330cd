"""``email``: SMTP (STARTTLS and login when configured), multipart text + HTML.

The standard library's ``smtplib`` runs in a thread; the Message-ID comes from
the delivery id, so a retried delivery is recognisably the same message.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import smtplib
import socket
import ssl
import threading
import uuid
from collections.abc import Collection, Mapping
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

from crm2_hookspecs import Crm2Context
from crm2_notifications import graphemes
from crm2_notifications.hookspecs import NotificationChannel, OutboundMessage, SendResult
from crm2_notifications.repository import people

log = logging.getLogger(__name__)

# replies about this message that will not change on a retry (its data refused; a
# mailbox unknown comes as SMTPRecipientsRefused). A 5xx anywhere else (login, HELO,
# the sender address) says the settings are wrong: every message would fail alike,
# so the delivery waits and retries while an admin fixes them
PERMANENT = range(500, 600)
# RFC 5321 4.2.2 / RFC 1870: 552 to MAIL FROM refuses the SIZE this message declared
# ("exceeded storage allocation"): the message's own refusal, not the sender address's
MESSAGE_REFUSED_AT_MAIL = frozenset({552})
MISCONFIGURED = "the e-mail channel is misconfigured"
SUBJECT_MAX = 250
CONVERSATION_TIMEOUTS = 3  # a whole SMTP conversation: this many smtp_timeout_seconds


def build(message: OutboundMessage, sender: str) -> EmailMessage:
    assert message.recipient is not None
    mail = EmailMessage()
    mail["From"] = sender
    # one line each: the name and the title are data users typed, and any line break in
    # a header (CR, VT, U+2028 … as str.splitlines sees them) is refused by the email
    # package, failing every attempt
    name = " ".join(message.recipient.full_name.splitlines())
    mail["To"] = formataddr((name, message.address or message.recipient.email))
    # cut on a grapheme edge: half a ZWJ emoji or flag shows as a broken glyph
    mail["Subject"] = graphemes.cut(" ".join(message.title.splitlines()), SUBJECT_MAX)
    mail["Message-ID"] = f"<{message.delivery_id}@crm2.notifications>"
    text, body_html = message.body, html.escape(message.body).replace("\n", "<br>\n")
    if message.digest:
        text = "\n".join(
            f"- {title}: {body}" if body else f"- {title}" for title, body in message.digest
        )
        items = "".join(
            f"<li><b>{html.escape(t)}</b> {html.escape(b)}</li>" for t, b in message.digest
        )
        body_html = f"<ul>{items}</ul>"
    if message.link:
        text += f"\n\n{message.link}"
        body_html += f'<p><a href="{html.escape(message.link, quote=True)}">Open in crm2</a></p>'
    mail.set_content(text)
    mail.add_alternative(
        f"<html><body><h3>{html.escape(message.title)}</h3><p>{body_html}</p></body></html>",
        subtype="html",
    )
    return mail


class EmailChannel(NotificationChannel):
    name = "email"
    title = "E-mail"

    def enabled(self, context: Crm2Context) -> bool:
        return bool(context.plugin_settings("notifications").smtp_host)

    async def addresses(
        self, user_ids: Collection[uuid.UUID], session: Any, context: Crm2Context
    ) -> Mapping[uuid.UUID, str]:
        """Every active user, at the e-mail address of their account."""
        found = await people.active_people(session, user_ids)
        return {user_id: email for user_id, (email, _name) in found.items() if email}

    async def send(self, message: OutboundMessage, context: Crm2Context) -> SendResult:
        if message.recipient is None or not message.address:
            return SendResult.failed("no e-mail address", retry=False)
        settings = context.plugin_settings("notifications")
        mail = build(message, settings.smtp_from)
        try:
            await asyncio.to_thread(_send, settings, mail)
        except smtplib.SMTPDataError as exc:
            return SendResult.failed(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
                status_code=exc.smtp_code,
                retry=exc.smtp_code not in PERMANENT,
            )
        except smtplib.SMTPRecipientsRefused as exc:
            return _refused(exc)
        except smtplib.SMTPSenderRefused as exc:
            if exc.smtp_code in MESSAGE_REFUSED_AT_MAIL:
                return SendResult.failed(
                    f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
                    status_code=exc.smtp_code,
                    retry=False,
                )
            return _misconfigured(settings, exc)
        except smtplib.SMTPResponseException as exc:
            return _misconfigured(settings, exc)
        except (OSError, smtplib.SMTPException) as exc:
            return SendResult.failed(f"{type(exc).__name__}: {exc}")
        return SendResult.delivered(250)


def _refused(exc: smtplib.SMTPRecipientsRefused) -> SendResult:
    """The mailbox refused: for good on a 5xx (unknown, disabled), but a 4xx (greylisting's
    450/451, a full mailbox's 452, a 421 closing) says "try later" (RFC 5321 4.2.1)."""
    codes = [code for code, _text in exc.recipients.values()]
    code = codes[0] if codes else None
    transient = bool(codes) and all(c < 500 for c in codes)
    return SendResult.failed(
        f"recipient refused: {exc.recipients}", status_code=code, retry=transient
    )


def _misconfigured(settings: Any, exc: smtplib.SMTPResponseException) -> SendResult:
    """A server's refusal of the connection, the login or the sender: the settings are at
    fault, not the message, so the delivery is retried with backoff (never dead-lettered
    at once) and the channel is flagged in the log for an admin."""
    what = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
    log.warning(
        "%s (%s on %s:%s as %r): check the CRM2_NOTIFICATIONS_SMTP_* settings",
        MISCONFIGURED,
        what,
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_username,
    )
    return SendResult.failed(f"{MISCONFIGURED}: {what}", status_code=exc.smtp_code)


def _cut(smtp: smtplib.SMTP) -> None:
    """End a conversation past its deadline: a read blocked in the thread returns."""
    sock = smtp.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _send(settings: Any, mail: EmailMessage) -> None:
    timeout = settings.smtp_timeout_seconds
    smtp = smtplib.SMTP(timeout=timeout)  # connected below, under the deadline
    # what SMTP(host) would set, and connect() does not: STARTTLS checks the server's
    # certificate against it
    smtp._host = settings.smtp_host  # type: ignore[attr-defined]
    # smtplib's timeout bounds each read: a server trickling a reply of many lines (or
    # one byte at a time) within it would hold the thread, and the job awaiting it,
    # for as long as it liked. The whole conversation gets CONVERSATION_TIMEOUTS of it.
    deadline = threading.Timer(timeout * CONVERSATION_TIMEOUTS, _cut, (smtp,))
    deadline.start()
    try:
        _converse(smtp, settings, mail)
    finally:
        deadline.cancel()
        smtp.close()


def _converse(smtp: smtplib.SMTP, settings: Any, mail: EmailMessage) -> None:
    code, banner = smtp.connect(settings.smtp_host, settings.smtp_port)
    if code != 220:  # as smtplib.SMTP(host) does
        raise smtplib.SMTPConnectError(code, banner)
    smtp.ehlo()
    if settings.smtp_starttls:
        smtp.starttls(context=ssl.create_default_context(cafile=settings.smtp_ca_file or None))
        smtp.ehlo()
    if settings.smtp_username:
        smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
    smtp.send_message(mail)
    with contextlib.suppress(smtplib.SMTPException, OSError):  # sent: a lost QUIT is no fault
        smtp.quit()
