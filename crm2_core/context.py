"""The running application as hooks, routes and the CLI see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm2_core.db.engine import (
    create_engine,
    create_read_session_factory,
    create_session_factory,
)
from crm2_core.plugins import PluginRegistry
from crm2_core.settings import Settings


@dataclass
class AppContext:
    """Everything built from settings: plugins, database, Redis. Implements ``Crm2Context``."""

    settings: Settings
    plugins: PluginRegistry
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    # safe requests' sessions (no BEGIN/COMMIT on PostgreSQL); None: use session_factory
    read_session_factory: async_sessionmaker[AsyncSession] | None = None
    redis: Redis | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def plugin_settings(self, name: str) -> Any:
        return self.plugins.settings_for(name)

    def is_enabled(self, name: str) -> bool:
        return self.plugins.is_enabled(name)

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def build_context(settings: Settings, plugins: PluginRegistry) -> AppContext:
    engine = create_engine(settings)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    return AppContext(
        settings=settings,
        plugins=plugins,
        engine=engine,
        session_factory=create_session_factory(engine),
        read_session_factory=create_read_session_factory(engine, settings),
        redis=redis,
    )
