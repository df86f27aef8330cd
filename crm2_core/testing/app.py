"""A crm2 application built for one test: chosen plugins, migrated database, logged-in users."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from crm2_core import migrate
from crm2_core.auth.schemas import UserCreate
from crm2_core.auth.service import AuthService
from crm2_core.bootstrap import build_app_context
from crm2_core.context import AppContext
from crm2_core.events.envelope import Envelope
from crm2_core.http.app import create_app
from crm2_core.settings import Settings
from crm2_core.testing.lifecycle import upgrade_keeping_rows

TEST_JWT_SECRET = "crm2-test-secret-not-for-production-0123456789"
TEST_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class SignedInUser:
    """A test user: ``headers`` authenticate, ``id`` is what owner and assignee fields hold."""

    id: uuid.UUID
    email: str
    headers: dict[str, str]


class UndeclaredProblem(UserWarning):
    """A test app answered a problem status its route's OpenAPI operation does not declare."""


class Crm2TestApp:
    """The running app, an HTTP client wired to it in-process, and helpers to sign in."""

    def __init__(self, app: FastAPI, context: AppContext, lifespan: LifespanManager) -> None:
        self.app = app
        self.context = context
        self._lifespan = lifespan
        self._closed = False
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=lifespan.app, client=("127.0.0.1", 40000)),
            base_url="http://crm2.test",
        )

    @property
    def auth(self) -> AuthService:
        service: AuthService = self.context.auth
        return service

    async def create_user(
        self, *roles: str, email: str | None = None, password: str = TEST_PASSWORD
    ) -> uuid.UUID:
        """Create a user with ``roles`` directly through the auth service."""
        data = UserCreate(
            email=email or f"{'-'.join(roles) or 'nobody'}-{uuid.uuid4().hex[:8]}@example.com",
            password=password,
            roles=list(roles),
        )
        async with self.context.session_factory() as session:
            user = await self.auth.create_user(session, data)
            await session.commit()
            return user.id

    async def login(self, *roles: str, email: str | None = None) -> dict[str, str]:
        """Create a user with ``roles`` (default admin), log in over HTTP, return auth headers."""
        return (await self.user(*roles, email=email)).headers

    async def user(self, *roles: str, email: str | None = None) -> SignedInUser:
        """Like :meth:`login`, keeping the new user's id and e-mail beside the headers."""
        roles = roles or ("admin",)
        email = email or f"{'-'.join(roles)}-{uuid.uuid4().hex[:8]}@example.com"
        user_id = await self.create_user(*roles, email=email)
        response = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
        )
        response.raise_for_status()
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return SignedInUser(id=user_id, email=email, headers=headers)

    async def settle_events(self, within: float = 10.0) -> None:
        """Relay every committed event and run its handlers, until the whole chain is quiet.

        Handlers may publish events of their own, and those have handlers too: the
        loop relays, waits for the in-process handlers, and looks again, until no
        event is waiting to be relayed and no handler is queued, running or due
        for a retry. Raises ``AssertionError`` naming what is still moving when
        that takes longer than ``within`` seconds (a handler chain that never ends).
        """
        bus = self.context.events
        drain = getattr(bus.broker, "drain", None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        # The deadline is checked between steps, never by cancelling one: a read or a
        # relay cut off inside its transaction could leave SQLite's write lock held.
        last: tuple[int, int] | None = None
        while loop.time() < deadline:
            await bus.relay_once()
            if await self._unrelayed():
                await asyncio.sleep(0.005)
                continue
            if drain is not None:
                # Only the wait is cut off here; the handlers run in tasks of their own.
                with contextlib.suppress(TimeoutError):
                    await drain(max(0.0, deadline - loop.time()))
            # The app's own relay may have just taken an event a handler published
            # and not yet queued it: quiet means nothing changed over a short pause.
            seen = await self._progress()
            if seen == last and not await self._unrelayed():
                return
            last = seen
            await asyncio.sleep(0.02)
        waiting = await self._unrelayed()
        raise AssertionError(
            f"events did not settle within {within}s: {waiting} event(s) still waiting "
            "to be relayed, or handlers still running (a handler chain that never ends?)"
        )

    async def _progress(self) -> tuple[int, int]:
        """How many events exist and how many handler applications were recorded."""
        from sqlalchemy import func, select

        from crm2_core.events.models import AppliedEvent, EventRecord

        async with self.context.session_factory() as session:
            events = await session.execute(select(func.count()).select_from(EventRecord))
            applied = await session.execute(select(func.count()).select_from(AppliedEvent))
            return int(events.scalar_one()), int(applied.scalar_one())

    async def _unrelayed(self) -> int:
        from sqlalchemy import func, select
        from sqlmodel import col

        from crm2_core.events.models import EventRecord

        async with self.context.session_factory() as session:
            waiting = await session.execute(
                select(func.count())
                .select_from(EventRecord)
                .where(col(EventRecord.relayed_at).is_(None))
            )
            return int(waiting.scalar_one())

    async def relay_by_hand(self) -> list[Envelope]:
        """Stop this app's in-process relay and handlers (for good), then relay the
        committed events and return them as a worker's deliveries carry them (with their
        positions): a test then hands each to a handler itself (:meth:`deliver`), one at
        a time, as a RabbitMQ or Redis worker would. Call it once before committing the
        events a test delivers by hand, so the app does not apply them itself first."""
        from crm2_core.events.relay import relay_batch

        await self.context.events.close()
        relayed: list[Envelope] = []

        async def keep(events: Sequence[Envelope]) -> None:
            relayed.extend(events)

        while await relay_batch(self.context.session_factory, keep):
            pass
        return relayed

    async def deliver(self, handler_id: str, event: Envelope) -> str | None:
        """Apply ``event`` with the handler ``<plugin>.<name>`` as a worker's delivery does
        (its ``skips``, claim, order and duplicate checks): ``"applied"``, ``"skipped"``
        (recorded by its claim alone, ``handle`` not run), ``"duplicate"``, ``"held"``, or
        ``None`` when it was dead-lettered; a wait or a failure that has retries left
        raises."""
        from crm2_core.events.handlers import apply_or_dead_letter

        handler = self.context.events.handlers.get(handler_id)
        assert handler is not None, f"no handler {handler_id}"
        return await apply_or_dead_letter(self.context, handler, event, 0)

    async def applied(self, handler_id: str, event_id: uuid.UUID) -> bool:
        """Has the handler ``<plugin>.<name>`` recorded ``event_id`` as applied?"""
        from crm2_core.events.models import AppliedEvent

        async with self.context.session_factory() as session:
            return await session.get(AppliedEvent, (handler_id, event_id)) is not None

    async def settle_jobs(self, within: float = 30.0) -> None:
        """Wait until the background jobs requests started (large CSV imports) have finished."""
        from crm2_core.jobs import JobRunner

        async with asyncio.timeout(within):
            await self.context.get(JobRunner).wait_idle()

    def undeclared_problems(self) -> list[tuple[str, str, int]]:
        """Every (method, path, status) problem this app answered that the route's OpenAPI
        operation does not declare: the document must say what a route can answer."""
        from crm2_core.http.problems import ANSWERED_KEY

        answered: set[tuple[str, str, int]] = getattr(self.app.state, ANSWERED_KEY, set())
        if not answered:
            return []
        paths = self.app.openapi().get("paths", {})
        missing = []
        for method, path, status in sorted(answered):
            operation = paths.get(path, {}).get(method.lower())
            if operation is None:
                continue  # not in the document (a HEAD, or hidden)
            declared = operation.get("responses", {})
            if str(status) not in declared and f"{str(status)[0]}XX" not in declared:
                missing.append((method, path, status))
        return missing

    async def aclose(self) -> None:
        """Stop the app (``crm2_shutdown`` hooks run); a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        await self.client.aclose()
        await self._lifespan.__aexit__(None, None, None)


from crm2_core.http.problems import ANSWERED_KEY  # noqa: E402


async def start_test_app(
    settings: Settings,
    *,
    extra_plugins: Sequence[object] = (),
    plugin_settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> Crm2TestApp:
    overrides: dict[str, dict[str, Any]] = {"auth": {"jwt_secret": TEST_JWT_SECRET}}
    for name, values in (plugin_settings or {}).items():
        overrides.setdefault(name, {}).update(values)
    context = build_app_context(
        settings, extra_plugins=tuple(extra_plugins), plugin_settings=overrides
    )
    await upgrade_keeping_rows(
        context.engine,
        settings.database_url,
        lambda: migrate.upgrade(context.engine, context.plugins),
    )
    app = create_app(context=context)
    setattr(app.state, ANSWERED_KEY, set())  # checked against /openapi.json at teardown
    lifespan = LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
    await lifespan.__aenter__()
    return Crm2TestApp(app, context, lifespan)
