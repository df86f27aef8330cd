"""The rules notifications ships for the core's sign-in events reach the people they name."""

from __future__ import annotations

from typing import Any

from notifications_kit import API, Notifications

from crm2_core.api import decide_login
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD
from crm2_hookspecs import LoginConfirmation, PluginManifest, hookimpl

LOGIN = "/api/v1/auth/login"
ASKED = "asked@example.com"


async def test_the_shipped_sign_in_rules_are_stored_and_active(
    notifications: Notifications,
) -> None:
    admin = await notifications.user("admin")
    rules = (await notifications.client.get(f"{API}/rules", headers=admin.headers)).json()
    shipped = {r["builtin_key"]: (r["event_type"], r["active"]) for r in rules["items"]}
    assert shipped["notifications:auth-login-delayed"] == ("auth.login.delayed", True)
    assert shipped["notifications:auth-login-denied"] == (
        "auth.login.confirmation_denied",
        True,
    )


async def test_wrong_passwords_on_an_account_tell_its_user_once_per_streak(
    notifications: Notifications,
) -> None:
    victim, bystander = await notifications.users("agent", "admin")
    free = notifications.app.auth.settings.login_free_failures
    wrong = {"email": victim.email, "password": "definitely-wrong-999"}
    for _ in range(free - 1):  # still free: no notification
        assert (await notifications.client.post(LOGIN, json=wrong)).status_code == 401
    await notifications.settle()
    assert await notifications.feed(victim) == []
    assert (await notifications.client.post(LOGIN, json=wrong)).status_code == 401
    await notifications.settle()
    (item,) = await notifications.feed(victim)
    assert item["title"] == "Several wrong passwords on your account"
    assert f"{free} wrong passwords in a row from 127.0.0.1" in item["body"]
    assert "definitely-wrong" not in item["body"] and victim.email not in item["body"]
    assert await notifications.feed(bystander) == []


class AskingPlugin:
    manifest = PluginManifest(name="asking", title="Asking")

    def __init__(self) -> None:
        self.asked: list[LoginConfirmation] = []

    @hookimpl
    def crm2_confirm_login(self, login: LoginConfirmation) -> Any:
        if login.email != ASKED:
            return None  # everyone else signs in at once
        self.asked.append(login)
        return True


async def test_a_refused_sign_in_tells_the_user_and_the_admins(crm2_app_factory: Any) -> None:
    asking = AskingPlugin()
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["notifications", "asking"], extra_plugins=(asking,)
    )
    n = Notifications(app)
    admin, agent = await n.users("admin", "agent")
    agent_id = await app.create_user("agent", email=ASKED)
    pending = await app.client.post(LOGIN, json={"email": ASKED, "password": TEST_PASSWORD})
    assert pending.status_code == 202
    async with app.context.session_factory() as session:
        assert await decide_login(session, asking.asked[-1].challenge_id, agent_id, False)
        await session.commit()
    await n.settle()
    (notice,) = await n.feed(admin)
    assert notice["title"] == "A sign-in with the right password was refused"
    assert str(agent_id) in notice["body"]
    assert await n.feed(agent) == []  # another agent hears nothing
