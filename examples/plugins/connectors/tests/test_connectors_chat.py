"""The ``chat`` channel against a Slack-compatible webhook on 127.0.0.1: notifications'
channel contract, Slack's answers, and a rule delivering to chat through the whole app."""

from __future__ import annotations

from typing import Any

import pytest
from connectors_servers import ChatServer
from crm2_notifications.hookspecs import NotificationChannel
from crm2_notifications.testing import ChannelContract, message_for

import crm2_connectors.plugin
from crm2_connectors.chat import ChatChannel
from crm2_core.testing.pytest_plugin import AppFactory

PLUGINS = ["notifications", "documents", "connectors"]


async def _app(crm2_app_factory: AppFactory, chat: ChatServer) -> Any:
    return await crm2_app_factory(
        plugins=PLUGINS,
        extra_plugins=(crm2_connectors.plugin,),
        plugin_settings={"connectors": {"chat_webhook_url": chat.url}},
    )


class TestChatChannel(ChannelContract):
    @pytest.fixture
    def channel(self) -> NotificationChannel:
        return ChatChannel()

    @pytest.fixture
    async def channel_context(self, crm2_app_factory: AppFactory, chat: ChatServer) -> Any:
        return (await _app(crm2_app_factory, chat)).context

    @pytest.fixture
    def address(self) -> str:
        return "@anna.berg"

    @pytest.fixture
    def received(self, chat: ChatServer) -> Any:
        return chat.texts

    @pytest.fixture
    def service_down(self, chat: ChatServer) -> Any:
        return chat.fail


async def test_slack_answers_decide_retries(crm2_app_factory: AppFactory, chat: ChatServer) -> None:
    context = (await _app(crm2_app_factory, chat)).context
    channel = ChatChannel()
    chat.answer, chat.retry_after = 429, "7"
    limited = await channel.send(message_for(channel, "@anna"), context)
    chat.answer, chat.retry_after = 404, None
    gone = await channel.send(message_for(channel, "@anna"), context)

    assert (limited.ok, limited.retry, limited.retry_after) == (False, True, 7.0)
    assert (gone.ok, gone.retry, gone.status_code) == (False, False, 404)


async def test_the_channel_is_off_without_a_webhook_url(crm2_app_factory: AppFactory) -> None:
    app = await crm2_app_factory(plugins=PLUGINS, extra_plugins=(crm2_connectors.plugin,))
    assert ChatChannel().enabled(app.context) is False


async def test_users_are_addressed_by_their_e_mail_handle(
    crm2_app_factory: AppFactory, chat: ChatServer
) -> None:
    app = await _app(crm2_app_factory, chat)
    agent = await app.user("agent")
    async with app.context.session_factory() as session:
        found = await ChatChannel().addresses({agent.id}, session, app.context)
    assert found == {agent.id: "@" + agent.email.split("@")[0]}
