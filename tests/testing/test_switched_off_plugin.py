"""Events that arrive while a plugin is switched off reach its handlers when it is switched on.

Each handler has a cursor in the event log (where it joined). With the embedded
broker, an app that starts queues every relayed event after the cursor that the
handler has neither applied nor dead-lettered: so a plugin left out of
``CRM2_PLUGINS`` for a while catches up, in log order, when it is back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import EventData, publish
from crm2_core.events import Envelope
from crm2_hookspecs import EventHandler, PluginManifest, hookimpl


class Rang(EventData, type="bell.ring.rang", version=1):
    n: int


class Bell:
    """Emits ``bell.ring.rang``; always enabled."""

    manifest = PluginManifest(name="bell", title="Bell (test only)")

    @hookimpl
    def crm2_event_types(self) -> Sequence[type]:
        return [Rang]


class Ear:
    """Hears the bell; the plugin an operator switches off and on."""

    manifest = PluginManifest(name="ear", title="Ear (test only)")

    def __init__(self) -> None:
        self.heard: list[int] = []

    async def hear(self, session: AsyncSession, event: Envelope, context: Any) -> None:
        self.heard.append(int(event.data["n"]))

    @hookimpl
    def crm2_event_handlers(self) -> Sequence[EventHandler]:
        return [EventHandler("hear", ("bell.ring.rang",), self.hear)]


BELL = uuid.uuid4()  # one subject: a handler applies one subject's events in log order


async def ring(app: Any, *numbers: int) -> None:
    async with app.context.session_factory() as session:
        for n in numbers:
            publish(session, Rang(n=n), subject=BELL)
        await session.commit()
    await app.settle_events()


async def test_a_plugin_switched_off_catches_up_when_switched_on(crm2_app_factory: Any) -> None:
    bell, ear = Bell(), Ear()
    both = ["bell", "ear"]
    first = await crm2_app_factory(plugins=both, extra_plugins=(bell, ear))
    await ring(first, 1)
    await first.aclose()
    assert ear.heard == [1]

    without_ear = await crm2_app_factory(plugins=["bell"], extra_plugins=(bell, ear))
    await ring(without_ear, 2, 3)  # CRM2_PLUGINS=bell: ear is off
    await without_ear.aclose()
    assert ear.heard == [1]

    again = await crm2_app_factory(plugins=both, extra_plugins=(bell, ear))
    await again.settle_events()
    assert ear.heard == [1, 2, 3]  # caught up, in log order, nothing twice
    await ring(again, 4)
    assert ear.heard == [1, 2, 3, 4]
