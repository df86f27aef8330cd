"""The contract every notification channel passes — ours and third parties'.

In your plugin's tests::

    from crm2_notifications.testing import ChannelContract

    class TestSlackChannel(ChannelContract):
        @pytest.fixture
        def channel(self): return SlackChannel()
        @pytest.fixture
        async def channel_context(self, crm2_app_factory, fake_slack):
            app = await crm2_app_factory(plugins=["notifications", "slack"],
                                         plugin_settings={"slack": {"base_url": fake_slack.url}})
            return app.context
        @pytest.fixture
        async def address(self, channel_context): return "C0123"      # what addresses() gives
        @pytest.fixture
        def received(self, fake_slack): return fake_slack.texts        # async () -> list[str]
        @pytest.fixture
        def service_down(self, fake_slack): return fake_slack.fail     # async () -> None

``received`` returns everything the fake service got so far, one string per
message (any form, as long as the message's text is in it); ``service_down``
makes the fake service fail every later request (stop it, or answer 5xx).
Every test here sends through the channel's real code path to that fake.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from crm2_notifications.hookspecs import (
    CHANNEL_NAME,
    NotificationChannel,
    OutboundMessage,
    Recipient,
    SendResult,
)

Received = Callable[[], Awaitable[list[str]]]
ServiceDown = Callable[[], Awaitable[None]]


def message_for(channel: NotificationChannel, address: str, **fields: Any) -> OutboundMessage:
    """A message as the delivery service builds one, for ``address``."""
    user = uuid.uuid4()
    values: dict[str, Any] = {
        "delivery_id": uuid.uuid4(),
        "channel": channel.name,
        "title": "Deal won: Fleet cover",
        "body": "Anna Berg signed for 900.00 EUR.",
        "event_type": "contract.thing.happened",
        "recipient": Recipient(user_id=user, email="anna@example.com", full_name="Anna Berg"),
        "address": address,
        "link": "https://crm.example.com/deals/1",
        **fields,
    }
    return OutboundMessage(**values)


async def _wait_for(received: Received, text: str, within: float = 10.0) -> list[str]:
    async with asyncio.timeout(within):
        while True:
            got = await received()
            if any(text in item for item in got):
                return got
            await asyncio.sleep(0.02)


class ChannelContract:
    """Inherit from it in a ``Test…`` class and provide the fixtures named in the module doc."""

    def test_the_channel_is_named_and_titled(self, channel: NotificationChannel) -> None:
        assert isinstance(channel, NotificationChannel)
        assert CHANNEL_NAME.match(channel.name), channel.name
        assert channel.title
        assert channel.rate_per_second is None or channel.rate_per_second > 0

    async def test_it_is_enabled_and_answers_addresses_only_for_those_asked(
        self, channel: NotificationChannel, channel_context: Any
    ) -> None:
        assert channel.enabled(channel_context) is True
        asked = {uuid.uuid4(), uuid.uuid4()}
        async with channel_context.session_factory() as session:
            found = await channel.addresses(asked, session, context=channel_context)
        assert set(found) <= asked
        assert all(isinstance(v, str) and v for v in found.values())

    async def test_send_delivers_title_and_body_unicode_and_markup_intact(
        self, channel: NotificationChannel, channel_context: Any, address: str, received: Received
    ) -> None:
        marker = uuid.uuid4().hex[:8]
        title = f"Сделка <b>&</b> 成交 ✓ {marker}"
        result = await channel.send(message_for(channel, address, title=title), channel_context)
        assert isinstance(result, SendResult) and result.ok, result
        got = await _wait_for(received, marker)
        mine = [item for item in got if marker in item]
        assert any("Сделка <b>&</b> 成交 ✓" in item for item in mine), mine
        assert any("Anna Berg signed" in item for item in mine), mine

    async def test_concurrent_sends_are_each_delivered(
        self, channel: NotificationChannel, channel_context: Any, address: str, received: Received
    ) -> None:
        markers = [uuid.uuid4().hex[:8] for _ in range(5)]
        results = await asyncio.gather(
            *(
                channel.send(message_for(channel, address, title=f"n {m}"), channel_context)
                for m in markers
            )
        )
        assert all(r.ok for r in results), results
        for marker in markers:
            await _wait_for(received, marker)

    async def test_a_failing_service_is_a_failed_result_not_an_exception(
        self,
        channel: NotificationChannel,
        channel_context: Any,
        address: str,
        service_down: ServiceDown,
    ) -> None:
        await service_down()
        result = await asyncio.wait_for(
            channel.send(message_for(channel, address), channel_context), 30
        )
        assert isinstance(result, SendResult) and not result.ok
        assert result.error


__all__ = ["ChannelContract", "message_for"]
