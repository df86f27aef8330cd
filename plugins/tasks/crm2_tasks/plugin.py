"""The tasks plugin: manifest and hooks, the only wiring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crm2_hookspecs import PluginManifest, hookimpl
from crm2_tasks.config import TasksSettings

manifest = PluginManifest(
    name="tasks",
    title="Tasks",
    requires_core=">=0.1,<1",
    settings=TasksSettings,
    description="Tasks, reminders, recurrence, SLA timers on business calendars, automations.",
)


@hookimpl
def crm2_models() -> Sequence[type]:
    from crm2_tasks.models import MODELS

    return MODELS


@hookimpl
def crm2_migrations() -> Path:
    return Path(__file__).parent / "migrations" / "versions"
