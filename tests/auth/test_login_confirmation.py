"""``crm2_confirm_login``: a plugin that has sign-ins confirmed out of band (the
notifications plugin's Telegram bot is the shipped one; its suite runs it end to end).
Here a throw-away plugin: the first answer decides, ``None`` signs in at once, ``False``
refuses (503) rather than skipping the second step, and an approval spends once."""

from __future__ import annotations

from typing import Any

from crm2_core.api import decide_login
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD
from crm2_hookspecs import LoginConfirmation, PluginManifest, hookimpl

LOGIN = "/api/v1/auth/login"


class PushPlugin:
    manifest = PluginManifest(name="push", title="Push")

    def __init__(self, answers: dict[str, bool | None]) -> None:
        self.answers = answers
        self.asked: list[LoginConfirmation] = []

    @hookimpl
    def crm2_confirm_login(self, login: LoginConfirmation) -> Any:
        async def send() -> bool | None:
            self.asked.append(login)
            return self.answers.get(login.email)

        return send()


async def _login(app: Crm2TestApp, email: str) -> Any:
    return await app.client.post(LOGIN, json={"email": email, "password": TEST_PASSWORD})


async def test_the_first_answer_decides_and_an_approval_spends_once(
    crm2_app_factory: Any,
) -> None:
    push = PushPlugin({"ok@example.com": True, "down@example.com": False})
    app = await crm2_app_factory(extra_plugins=(push,))
    for email in ("ok@example.com", "down@example.com", "plain@example.com"):
        await app.create_user("agent", email=email)

    assert (await _login(app, "plain@example.com")).status_code == 200  # None: at once
    down = await _login(app, "down@example.com")
    assert down.status_code == 503 and down.json()["type"].endswith("confirmation-unavailable")
    wrong = await app.client.post(LOGIN, json={"email": "ok@example.com", "password": "nope"})
    assert wrong.status_code == 401 and push.asked[-1].email != "ok@example.com"

    pending = await _login(app, "ok@example.com")
    assert pending.status_code == 202
    token = pending.json()["confirmation_token"]
    poll = {"confirmation_token": token}
    assert (await app.client.post(f"{LOGIN}/confirm", json=poll)).status_code == 202
    login = push.asked[-1]
    async with app.context.session_factory() as session:
        other = await app.create_user("agent", email="other@example.com")
        assert not await decide_login(session, login.challenge_id, other, True)  # not theirs
        assert await decide_login(session, login.challenge_id, login.user_id, True)
        assert not await decide_login(session, login.challenge_id, login.user_id, False)
        await session.commit()
    tokens = await app.client.post(f"{LOGIN}/confirm", json=poll)
    assert tokens.status_code == 200 and tokens.json()["token_type"] == "bearer"
    assert (await app.client.post(f"{LOGIN}/confirm", json=poll)).status_code == 401


async def test_a_sign_in_waiting_for_confirmation_dies_with_a_password_change(
    crm2_app_factory: Any,
) -> None:
    """An admin resets a stolen account's password: the thief's sign-in, started with the
    old password and approved (by mistake) or still waiting, gives no tokens."""
    push = PushPlugin({"stolen@example.com": True})
    app = await crm2_app_factory(extra_plugins=(push,))
    user_id = await app.create_user("agent", email="stolen@example.com")
    polls = []
    for approve in (True, False):
        pending = await _login(app, "stolen@example.com")
        assert pending.status_code == 202, pending.text
        polls.append(({"confirmation_token": pending.json()["confirmation_token"]}, approve))
        if approve:
            async with app.context.session_factory() as session:
                login = push.asked[-1]
                assert await decide_login(session, login.challenge_id, user_id, True)
                await session.commit()
    waiting = push.asked[-1]

    admin = await app.login("admin")
    url = f"/api/v1/auth/users/{user_id}"
    etag = (await app.client.get(url, headers=admin)).headers["etag"]
    changed = await app.client.patch(
        url, json={"password": "a brand new secret"}, headers={**admin, "If-Match": etag}
    )
    assert changed.status_code == 200, changed.text
    async with app.context.session_factory() as session:  # the late approval finds nothing
        assert not await decide_login(session, waiting.challenge_id, user_id, True)
        await session.commit()

    for poll, _ in polls:
        refused = await app.client.post(f"{LOGIN}/confirm", json=poll)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
