"""Sign-in decisions worth acting on are events: ``auth.login.failed`` / ``.delayed`` for a
refused password on an existing account, ``auth.login.confirmation_requested`` /
``.confirmation_denied`` around an out-of-band confirmation. A sign-in that simply
succeeds writes no event (the hot path stays one transaction without an outbox row);
no payload holds an e-mail, a password or a token."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import col

from crm2_core.api import decide_login
from crm2_core.auth.models import User
from crm2_core.events.models import EventRecord
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD
from crm2_hookspecs import LoginConfirmation, PluginManifest, hookimpl

LOGIN = "/api/v1/auth/login"
WRONG = "not-the-password-1234"


async def _events(app: Crm2TestApp, prefix: str = "auth.login.") -> list[EventRecord]:
    async with app.context.session_factory() as session:
        rows = await session.execute(
            select(EventRecord)
            .where(col(EventRecord.type).startswith(prefix))
            # write order: the relay may not have given the last ones their positions
            # yet (NULL sorts first on SQLite, last on PostgreSQL)
            .order_by(col(EventRecord.sequence))
        )
        return list(rows.scalars())


def _no_secrets(row: EventRecord, *secrets: str) -> None:
    text = json.dumps(row.data)
    for secret in secrets:
        assert secret not in text, (row.type, secret)


async def test_a_wrong_password_on_an_account_publishes_login_failed(crm2: Crm2TestApp) -> None:
    email = f"victim-{uuid.uuid4().hex[:6]}@example.com"
    user_id = await crm2.create_user("agent", email=email)
    response = await crm2.client.post(LOGIN, json={"email": email, "password": WRONG})
    assert response.status_code == 401
    [failed] = await _events(crm2)
    assert (failed.type, failed.version, failed.subject) == ("auth.login.failed", 1, str(user_id))
    assert failed.actor_kind == "system"
    assert failed.data == {
        "user_id": str(user_id),
        "address": "127.0.0.1",
        "reason": "wrong_password",
        "failures": 1,
        "retry_after_seconds": 0,
    }
    _no_secrets(failed, email, WRONG, TEST_PASSWORD)


async def test_an_unknown_email_and_a_plain_sign_in_publish_nothing(crm2: Crm2TestApp) -> None:
    ghost = {"email": "nobody-here@example.com", "password": WRONG}
    assert (await crm2.client.post(LOGIN, json=ghost)).status_code == 401
    await crm2.login("agent")  # a sign-in that succeeds at once: no outbox row at all
    async with crm2.context.session_factory() as session:
        count = await session.scalar(select(func.count()).select_from(EventRecord))
    assert count == 0


async def test_a_disabled_account_with_the_right_password_is_account_disabled(
    crm2: Crm2TestApp,
) -> None:
    email = f"gone-{uuid.uuid4().hex[:6]}@example.com"
    user_id = await crm2.create_user("agent", email=email)
    async with crm2.context.session_factory() as session:
        await session.execute(update(User).where(col(User.id) == user_id).values(is_active=False))
        await session.commit()
    response = await crm2.client.post(LOGIN, json={"email": email, "password": TEST_PASSWORD})
    assert response.status_code == 401
    [failed] = await _events(crm2)
    assert failed.data["reason"] == "account_disabled"
    _no_secrets(failed, email, TEST_PASSWORD)


async def test_using_up_the_free_failures_publishes_login_delayed_once(crm2: Crm2TestApp) -> None:
    free = crm2.auth.settings.login_free_failures
    email = f"guessed-{uuid.uuid4().hex[:6]}@example.com"
    user_id = await crm2.create_user("agent", email=email)
    for _ in range(free):
        response = await crm2.client.post(LOGIN, json={"email": email, "password": WRONG})
        assert response.status_code == 401
    waiting = await crm2.client.post(LOGIN, json={"email": email, "password": WRONG})
    assert waiting.status_code == 429  # delayed: the password is not even checked, no event
    rows = await _events(crm2)
    assert [r.type for r in rows] == ["auth.login.failed"] * free + ["auth.login.delayed"]
    assert [r.data["failures"] for r in rows[:-1]] == list(range(1, free + 1))
    delayed = rows[-1]
    assert delayed.subject == str(user_id)
    assert delayed.data["failures"] == free and delayed.data["retry_after_seconds"] >= 1
    assert rows[-2].data["retry_after_seconds"] == delayed.data["retry_after_seconds"]


class AskingPlugin:
    manifest = PluginManifest(name="asking", title="Asking")

    def __init__(self) -> None:
        self.asked: list[LoginConfirmation] = []

    @hookimpl
    def crm2_confirm_login(self, login: LoginConfirmation) -> Any:
        self.asked.append(login)
        return True


async def test_a_confirmation_is_requested_then_denied_in_events(crm2_app_factory: Any) -> None:
    asking = AskingPlugin()
    app = await crm2_app_factory(extra_plugins=(asking,))
    email = f"asked-{uuid.uuid4().hex[:6]}@example.com"
    user_id = await app.create_user("agent", email=email)
    pending = await app.client.post(LOGIN, json={"email": email, "password": TEST_PASSWORD})
    assert pending.status_code == 202
    secret = pending.json()["confirmation_token"]
    [requested] = await _events(app)
    login = asking.asked[-1]
    assert requested.type == "auth.login.confirmation_requested"
    assert requested.data == {
        "user_id": str(user_id),
        "challenge_id": str(login.challenge_id),
        "address": "127.0.0.1",
        "expires_at": requested.data["expires_at"],
    }
    async with app.context.session_factory() as session:
        assert await decide_login(session, login.challenge_id, user_id, False)
        assert not await decide_login(session, login.challenge_id, user_id, False)  # once
        await session.commit()
    rows = await _events(app)
    assert [r.type for r in rows] == [
        "auth.login.confirmation_requested",
        "auth.login.confirmation_denied",
    ]
    denied = rows[-1]
    assert (denied.actor_kind, denied.actor_id) == ("user", str(user_id))
    assert denied.data == {"user_id": str(user_id), "challenge_id": str(login.challenge_id)}
    for row in rows:
        _no_secrets(row, email, TEST_PASSWORD, secret)
