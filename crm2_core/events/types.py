"""Typed, versioned event classes: a plugin's public contract.

A plugin declares each event it emits as a subclass of ``EventData`` with a
class-level name ``<plugin>.<entity>.<verb>`` and a schema version, and lists
them in its ``crm2_event_types`` hook::

    class DealStageChanged(EventData, type="deals.deal.stage_changed", version=1):
        from_stage_id: uuid.UUID
        to_stage_id: uuid.UUID
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from crm2_core.errors import ConfigurationError

EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class EventData(BaseModel):
    """The ``data`` of an event; subclasses set ``type=`` and ``version=`` in the class line."""

    # Built on the first event of the type rather than at import: a process starts with
    # every plugin's event classes and emits or handles few of them soon.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    event_type: ClassVar[str] = ""
    event_version: ClassVar[int] = 1

    def __init_subclass__(cls, *, type: str | None = None, version: int = 1, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if type is not None:
            if not EVENT_TYPE_PATTERN.match(type):
                raise ValueError(f"event type {type!r} must look like <plugin>.<entity>.<verb>")
            if version < 1:
                raise ValueError(f"{type}: version starts at 1")
            cls.event_type = type
            cls.event_version = version

    @classmethod
    def plugin(cls) -> str:
        return cls.event_type.split(".", 1)[0]


class EventTypeRegistry:
    """Every enabled plugin's event classes, by ``(type, version)``."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, int], type[EventData]] = {}
        self._owners: dict[str, str] = {}

    def register(self, plugin: str, classes: Iterable[type[EventData]]) -> None:
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, EventData)) or not cls.event_type:
                raise ConfigurationError(
                    f"{plugin}: crm2_event_types returned {cls!r}; return EventData subclasses "
                    "declared with type='<plugin>.<entity>.<verb>'"
                )
            if cls.plugin() != plugin:
                raise ConfigurationError(
                    f"{plugin} declares event {cls.event_type!r}; a plugin's events start with "
                    f"its name: rename it to {plugin}.…"
                )
            key = (cls.event_type, cls.event_version)
            if key in self._types and self._types[key] is not cls:
                raise ConfigurationError(
                    f"{plugin}: event {cls.event_type} v{cls.event_version} is declared twice"
                )
            self._types[key] = cls
            self._owners[cls.event_type] = plugin

    def get(self, event_type: str, version: int) -> type[EventData] | None:
        return self._types.get((event_type, version))

    def all(self) -> list[type[EventData]]:
        return [self._types[k] for k in sorted(self._types)]

    def owner(self, event_type: str) -> str | None:
        return self._owners.get(event_type)
