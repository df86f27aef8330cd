"""`crm2 events dead-letters`: list what handlers gave up on, replay it."""

from __future__ import annotations

import asyncio
import uuid

import probe_plugin
from click.testing import CliRunner
from helpers import dead_letters, effects, wait_for
from helpers import run_dead_letters_cli as _run_cli

from crm2_core.cli.main import cli


async def test_dead_letters_are_listed_then_replayed_once(crm2_app_factory, monkeypatch) -> None:
    probe_plugin.FAILURES["*"] = 99
    app = await crm2_app_factory(extra_plugins=(probe_plugin,))
    headers = await app.login("agent")
    response = await app.client.post("/api/v1/probe/items", json={"n": 4}, headers=headers)
    event_id = uuid.UUID(response.json()["event_id"])

    async def dead() -> bool:
        return len(await dead_letters(app)) == 1

    await wait_for(dead)
    settings = app.context.settings
    listed = await asyncio.to_thread(_run_cli, monkeypatch, settings)
    assert listed.exit_code == 0, listed.output
    assert "probe.record" in listed.output and "probe failure" in listed.output

    probe_plugin.FAILURES.clear()
    (letter,) = await dead_letters(app)
    replayed = await asyncio.to_thread(_run_cli, monkeypatch, settings, "--retry", str(letter.id))
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1 dead letter" in replayed.output
    assert await effects(app, event_id) == 1
    (letter,) = await dead_letters(app)
    assert letter.retried_at is not None
    again = await asyncio.to_thread(_run_cli, monkeypatch, settings, "--all")
    assert "replayed 0 dead letter" in again.output
    assert await effects(app, event_id) == 1


def test_a_malformed_dead_letter_id_is_a_clean_error(monkeypatch) -> None:
    result = CliRunner().invoke(cli, ["events", "dead-letters", "--retry", "nope"])
    assert result.exit_code != 0
    assert "is not a dead-letter id" in result.output
