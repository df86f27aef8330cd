"""A plugin whose handler offers ``handle_batch``: it records probe effects, and what ran how."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from probe_plugin import ProbeEffect
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.events import Envelope
from crm2_hookspecs import EventHandler, PluginManifest, hookimpl

manifest = PluginManifest(name="batcher", title="Batch handler probe", depends=("probe",))
SUBJECT_PREFIX = "batcher:"
# ("batch", [n, ...]) or ("one", n), in the order the handler ran
CALLS: list[tuple[str, Any]] = []
FAIL_BATCH: list[bool] = [False]
# seconds the first batch takes (later ones come while it runs)
SLOW_FIRST_BATCH: list[float] = [0.0]


def _effect(event: Envelope) -> ProbeEffect:
    return ProbeEffect(event_id=event.id, subject=SUBJECT_PREFIX + event.subject, n=event.data["n"])


async def one(session: AsyncSession, event: Envelope, context: Any) -> None:
    CALLS.append(("one", event.data["n"]))
    session.add(_effect(event))


async def many(session: AsyncSession, events: Sequence[Envelope], context: Any) -> None:
    CALLS.append(("batch", [event.data["n"] for event in events]))
    if len(CALLS) == 1 and SLOW_FIRST_BATCH[0]:
        await asyncio.sleep(SLOW_FIRST_BATCH[0])
    session.add_all([_effect(event) for event in events])
    if FAIL_BATCH[0]:
        await session.flush()  # written, then rolled back with the batch
        raise RuntimeError("the batch fails")


@hookimpl
def crm2_event_handlers() -> Sequence[EventHandler]:
    return [
        EventHandler(
            name="effects",
            event_types=("probe.item.created",),
            handle=one,
            handle_batch=many,
            max_retries=2,
            min_backoff_seconds=0.05,
            max_backoff_seconds=0.2,
        )
    ]
