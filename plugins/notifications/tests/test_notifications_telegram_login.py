"""Sign-ins confirmed from Telegram, end to end: the core's ``POST /auth/login`` asks the
notifications plugin (``crm2_confirm_login``), the bot sends Yes / No buttons to the fake
Bot API on 127.0.0.1, the press comes back through the webhook, the client's poll gets
tokens — once, only for the linked user's own chat, never after a "No"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from crm2_notifications.service.login_confirm import APPROVED, DENIED, GONE
from fake_telegram import FakeBotApi, fake_bot_api
from notifications_kit import API, Notifications, User
from sqlalchemy import column, table, update
from test_notifications_telegram import SECRET, telegram_settings

from crm2_core.api import utcnow
from crm2_core.testing.app import TEST_PASSWORD

LOGIN = "/api/v1/auth/login"


@pytest.fixture
async def bot() -> AsyncIterator[FakeBotApi]:
    async with fake_bot_api() as fake:
        yield fake


@pytest.fixture
async def n(crm2_app_factory: Any, bot: FakeBotApi) -> Notifications:
    app = await crm2_app_factory(
        plugins=["notifications"], plugin_settings={"notifications": telegram_settings(bot)}
    )
    return Notifications(app)


_ids = iter(range(1000, 10_000))


async def _webhook(n: Notifications, body: dict[str, Any]) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    response = await n.client.post(
        f"{API}/telegram/webhook", json={"update_id": next(_ids), **body}, headers=headers
    )
    assert response.status_code == 204, response.text


async def _link(n: Notifications, user: User, chat: int, *, confirm: bool = True) -> None:
    code = (await n.client.post(f"{API}/telegram/link", headers=user.headers)).json()["code"]
    await _webhook(n, {"message": {"chat": {"id": chat}, "text": f"/start {code}"}})
    if confirm:
        body = {"enabled": True}
        put = await n.client.put(
            f"{API}/telegram/login-confirmation", json=body, headers=user.headers
        )
        assert put.status_code == 200, put.text
        assert put.json() == {"linked": True, "linked_at": put.json()["linked_at"],
                              "confirm_logins": True, "disabled_at": None,
                              "disabled_reason": None}  # fmt: skip


async def _press(n: Notifications, bot: FakeBotApi, chat: int, choice: str) -> None:
    """The user presses a button of the last question the bot sent (to ``chat``'s owner)."""
    question = [m for m in bot.sent if "reply_markup" in m][-1]
    buttons = question["reply_markup"]["inline_keyboard"][0]
    data = buttons[0 if choice == "yes" else 1]["callback_data"]
    callback = {"id": f"cb{len(bot.calls)}", "data": data, "from": {"id": chat},
                "message": {"message_id": 1, "chat": {"id": chat}}}  # fmt: skip
    await _webhook(n, {"callback_query": callback})


async def _sign_in(n: Notifications, user: User) -> str:
    response = await n.client.post(LOGIN, json={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    return str(response.json()["confirmation_token"])


async def _poll(n: Notifications, token: str) -> Any:
    return await n.client.post(f"{LOGIN}/confirm", json={"confirmation_token": token})


async def test_a_linked_user_confirms_a_sign_in_with_the_bot(
    n: Notifications, bot: FakeBotApi
) -> None:
    owner = await n.user("agent")
    await _link(n, owner, chat=777)
    token = await _sign_in(n, owner)
    question = bot.sent[-1]
    assert question["chat_id"] == 777 and owner.email in question["text"]
    assert (await _poll(n, token)).status_code == 202  # waits for the press

    await _press(n, bot, 777, "yes")
    assert ("answerCallbackQuery", {"callback_query_id": bot.calls[-2][1]["callback_query_id"],
                                    "text": APPROVED}) in bot.calls  # fmt: skip
    signed_in = await _poll(n, token)
    assert signed_in.status_code == 200, signed_in.text
    me = await n.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    )
    assert me.json()["id"] == str(owner.id)
    again = await _poll(n, token)  # the tokens are given once
    assert again.status_code == 401
    assert again.headers["content-type"] == "application/problem+json"


async def test_no_refuses_and_another_chat_cannot_confirm(
    n: Notifications, bot: FakeBotApi
) -> None:
    owner, other = await n.users("agent", "agent")
    await _link(n, owner, chat=777)
    await _link(n, other, chat=888)
    token = await _sign_in(n, owner)
    await _press(n, bot, 888, "yes")  # the other user's chat presses the owner's button
    assert bot.to(888)[-1] == GONE
    assert (await _poll(n, token)).status_code == 202
    await _press(n, bot, 777, "no")
    assert bot.to(777)[-1] == DENIED
    refused = await _poll(n, token)
    assert refused.status_code == 401 and "refused" in refused.json()["detail"]
    await _press(n, bot, 777, "yes")  # a late change of mind changes nothing
    assert (await _poll(n, token)).status_code == 401


async def test_without_opt_in_sign_in_is_immediate_and_an_expired_one_is_refused(
    n: Notifications, bot: FakeBotApi
) -> None:
    plain = await n.user("viewer")
    await _link(n, plain, chat=555, confirm=False)
    direct = await n.client.post(LOGIN, json={"email": plain.email, "password": TEST_PASSWORD})
    assert direct.status_code == 200 and "access_token" in direct.json()

    owner = await n.user("agent")
    await _link(n, owner, chat=777)
    token = await _sign_in(n, owner)
    async with n.context.session_factory() as session:
        await session.execute(  # the core's table, by name (plugins import only crm2_core.api)
            update(table("auth_login_challenge", column("expires_at"))).values(expires_at=utcnow())
        )
        await session.commit()
    await _press(n, bot, 777, "yes")
    assert bot.to(777)[-1] == GONE
    assert (await _poll(n, token)).status_code == 401


async def test_an_unreachable_bot_refuses_the_sign_in_and_unlinked_users_get_409(
    n: Notifications, bot: FakeBotApi
) -> None:
    owner = await n.user("agent")
    unlinked = await n.user("agent")
    put = await n.client.put(
        f"{API}/telegram/login-confirmation", json={"enabled": True}, headers=unlinked.headers
    )
    assert put.status_code == 409
    status = await n.client.get(f"{API}/telegram", headers=unlinked.headers)
    assert status.json() == {"linked": False, "linked_at": None, "confirm_logins": False,
                             "disabled_at": None, "disabled_reason": None}  # fmt: skip
    await _link(n, owner, chat=777)
    await bot.fail()
    response = await n.client.post(LOGIN, json={"email": owner.email, "password": TEST_PASSWORD})
    assert response.status_code == 503
    assert response.json()["type"].endswith("login-confirmation-unavailable")
    bad = await n.client.post(f"{LOGIN}/confirm", json={"confirmation_token": "x" * 40})
    assert bad.status_code == 401


async def test_in_a_linked_group_no_member_can_answer_a_sign_in(
    n: Notifications, bot: FakeBotApi
) -> None:
    """A group linked with /start (its id is negative) has many members: a press there is
    no proof of the user, so it counts for nothing, and confirming in a group is refused."""
    owner = await n.user("agent")
    await _link(n, owner, chat=777)
    token = await _sign_in(n, owner)
    question = [m for m in bot.sent if "reply_markup" in m][-1]
    data = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    # someone else pressing in the linked chat (as in a group): not its person
    stranger = {"id": "cb-x", "data": data, "from": {"id": 4242},
                "message": {"message_id": 1, "chat": {"id": 777}}}  # fmt: skip
    await _webhook(n, {"callback_query": stranger})
    assert bot.to(777)[-1] == GONE
    assert (await _poll(n, token)).status_code == 202  # still waiting for the owner

    group_user = await n.user("agent")
    await _link(n, group_user, chat=-100123, confirm=False)
    put = await n.client.put(
        f"{API}/telegram/login-confirmation", json={"enabled": True}, headers=group_user.headers
    )
    assert put.status_code == 409 and "private" in put.json()["detail"], put.text
