"""The hooks crm2-core calls, in the style of pytest's ``hookspec.py``.

Every hook is named ``crm2_*``. Implementations may accept fewer arguments
than the spec names, so a spec can grow a parameter without breaking plugins.
pluggy itself is synchronous: a hook that needs I/O returns an awaitable and
the core awaits it. The core calls every hook in dependency order (a plugin
after the plugins it depends on); shutdown runs in reverse.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm2_hookspecs.markers import hookspec

if TYPE_CHECKING:
    from crm2_hookspecs.records import (
        ConsoleView,
        Crm2Context,
        EventHandler,
        HealthCheck,
        LoginConfirmation,
        Permission,
        Principal,
        ScheduledJob,
        SseChannel,
    )


class Crm2Spec:
    """The hook specifications; registered by ``crm2_core.plugins.build_plugin_manager``."""

    # -- registration ---------------------------------------------------------

    @hookspec
    def crm2_models(self) -> Sequence[type]:
        """Return the SQLModel table classes this plugin owns.

        Every table must live in the shared ``SQLModel.metadata``, be named with
        the plugin's prefix (``deals_deal``) and carry
        ``__table_args__ = {"info": {"plugin": "<name>"}}`` so that
        ``crm2 makemigrations <name>`` sees only this plugin's tables.

        :returns: the table classes.
        """
        raise NotImplementedError

    @hookspec
    def crm2_routers(self, context: Crm2Context) -> Sequence[Any]:
        """Return the FastAPI ``APIRouter`` objects this plugin serves.

        Every path must start with ``/api/v1/<name>``; the core refuses to start
        otherwise. Routes declare their authorization as dependencies.

        :param context: the running application.
        :returns: the routers, mounted in the order given.
        """
        raise NotImplementedError

    @hookspec
    def crm2_migrations(self) -> str | os.PathLike[str]:
        """Return the folder holding this plugin's Alembic revisions.

        The revisions form one linear branch labelled with the plugin's name and
        are recorded in their own version table ``alembic_version_<name>``.

        :returns: a path to the ``versions`` folder.
        """
        raise NotImplementedError

    @hookspec
    def crm2_permissions(self) -> Sequence[Permission]:
        """Return the permissions this plugin checks, with the roles it proposes by default.

        Names start with the plugin's name (``deals:read``).

        :returns: the permissions.
        """
        raise NotImplementedError

    @hookspec
    def crm2_event_types(self) -> Sequence[type]:
        """Return the event classes this plugin emits: its public, versioned contract.

        Subclasses of ``crm2_core.events.EventData`` declared with
        ``type="<plugin>.<entity>.<verb>"`` and ``version=N``.

        :returns: the event classes.
        """
        raise NotImplementedError

    @hookspec
    def crm2_event_handlers(self, context: Crm2Context) -> Sequence[EventHandler]:
        """Return the handlers this plugin runs when other plugins' events arrive.

        Each runs in a transaction of its own in which the core records that it
        applied the event, so a redelivery changes nothing; it must not commit.

        :param context: the running application.
        :returns: ``EventHandler`` records; a handler's id is ``<plugin>.<name>``.
        """
        raise NotImplementedError

    @hookspec
    def crm2_sse_channels(self, context: Crm2Context) -> Sequence[SseChannel]:
        """Return the live channels served at ``/api/v1/streams/<channel>``.

        The channel's ``can_see`` decides, per event and subscriber, whether
        the subscriber may receive it (record-level rules).

        :param context: the running application.
        :returns: ``SseChannel`` records.
        """
        raise NotImplementedError

    @hookspec
    def crm2_scheduled_jobs(self, context: Crm2Context) -> Sequence[ScheduledJob]:
        """Return the periodic jobs this plugin needs.

        :param context: the running application.
        :returns: the jobs; each must be safe to run twice.
        """
        raise NotImplementedError

    @hookspec
    def crm2_cli(self, cli: Any) -> None:
        """Add commands to the ``crm2`` command line.

        :param cli: the root ``click.Group``; add a group named after the plugin.
        """

    @hookspec
    def crm2_seed(self, name: str, context: Crm2Context) -> Awaitable[None] | None:
        """Load the named data set (``demo``, ``load``) for this plugin.

        Called in dependency order, so a plugin may read what its
        dependencies seeded.

        :param name: the data set asked for on ``crm2 seed <name>``.
        :param context: the running application.
        :returns: an awaitable that loads the data, or ``None`` when this plugin
            has nothing for that data set.
        """

    @hookspec
    def crm2_health_checks(self, context: Crm2Context) -> Sequence[HealthCheck]:
        """Return readiness probes reported by ``/readyz``.

        :param context: the running application.
        :returns: the probes.
        """
        raise NotImplementedError

    @hookspec
    def crm2_console_views(self, context: Crm2Context) -> Sequence[ConsoleView]:
        """Return the sections this plugin adds to the web console.

        The console (the ``console`` plugin) lists them at
        ``GET /api/v1/console/views``, keeping those whose ``permission`` the
        signed-in user holds, and renders each one generically from the
        plugin's list endpoint and OpenAPI schemas: no console rebuild needed.

        :param context: the running application.
        :returns: ``ConsoleView`` records; each key starts with the plugin's name.
        """
        raise NotImplementedError

    @hookspec(firstresult=True)
    def crm2_web_root(self, context: Crm2Context) -> Any:
        """Return an ASGI app that answers the requests no route matched, outside ``/api/``.

        ``firstresult``: one plugin serves the site (the console's static
        files at ``/``). Unmatched paths under ``/api/`` stay the core's
        problem+json 404, and a path a route matches with another method stays
        a 405.

        :param context: the running application.
        :returns: an ASGI application, or ``None`` to leave the web root alone.
        """

    # -- lifecycle ------------------------------------------------------------

    @hookspec
    def crm2_configure(self, context: Crm2Context) -> None:
        """Build this plugin's services when the application is assembled, before routers.

        Check settings that depend on each other or on the core's (raise
        ``crm2_core.errors.ConfigurationError`` to stop start-up with a message
        that names the fix) and keep long-lived objects with ``context.provide(TheirClass, obj)``.
        No I/O here: it runs for the CLI as well as the server.

        :param context: the application being assembled.
        """

    @hookspec
    def crm2_startup(self, context: Crm2Context) -> Awaitable[None] | None:
        """Called once when the application starts, after its dependencies' startups.

        :param context: the running application.
        :returns: optionally an awaitable the core awaits.
        """

    @hookspec
    def crm2_shutdown(self, context: Crm2Context) -> Awaitable[None] | None:
        """Called once when the application stops, before its dependencies' shutdowns.

        :param context: the running application.
        :returns: optionally an awaitable the core awaits.
        """

    @hookspec
    def crm2_worker_boot(self, context: Crm2Context) -> Awaitable[None] | None:
        """Called once in each ``crm2 worker`` process before it takes messages.

        :param context: the worker's application context.
        :returns: optionally an awaitable the core awaits.
        """

    # -- decisions ------------------------------------------------------------

    @hookspec(firstresult=True)
    def crm2_authenticate(
        self, headers: Mapping[str, str], context: Crm2Context
    ) -> Awaitable[Principal | None] | None:
        """Authenticate a request the built-in bearer and API-key schemes do not recognise.

        ``firstresult``: the first implementation that returns something other
        than ``None`` decides. Return ``None`` synchronously when the request is
        not yours; return an awaitable resolving to the ``Principal`` (or to
        ``None`` to refuse it) when it is.

        :param headers: the request headers, lower-cased names.
        :param context: the running application.
        """

    @hookspec
    def crm2_confirm_login(
        self, login: LoginConfirmation, context: Crm2Context, session: Any
    ) -> Awaitable[bool | None] | None:
        """Ask a user whose password was right to confirm the sign-in out of band.

        Called by ``POST /api/v1/auth/login`` once the password matched; the
        implementations are asked in dependency order and the first answer that is
        not ``None`` decides. Return ``None`` (synchronously, or from the awaitable)
        when you cannot confirm sign-ins for this user; otherwise an awaitable that
        sends the question (a Telegram message with buttons, …) and resolves to
        ``True`` once it is on its way, or ``False`` when it could not be sent (the
        sign-in is then refused with 503: a second factor is never skipped). The
        client gets 202 and a secret to poll ``POST /api/v1/auth/login/confirm``
        with; record the user's answer with ``crm2_core.api.decide_login``.

        :param login: the waiting sign-in.
        :param context: the running application.
        :param session: the request's ``AsyncSession``: read in it, never commit.
        """

    @hookspec
    def crm2_check_permission(
        self, principal: Principal, permission: str, resource: object | None
    ) -> bool | None:
        """Veto a permission the principal's roles grant.

        Any ``False`` denies; ``None`` or ``True`` leaves the decision to the roles.

        :param principal: who is asking.
        :param permission: the permission string being checked.
        :param resource: the record concerned, when the check is about one.
        """

    @hookspec(firstresult=True)
    def crm2_resolve_entity(
        self, kind: str, id: str, principal: Principal | None, context: Crm2Context, session: Any
    ) -> Awaitable[Mapping[str, Any] | None] | None:
        """Look up a record of another plugin without importing it.

        ``firstresult``: the plugin owning ``kind`` (``deals.deal``) answers.

        :param kind: ``<plugin>.<entity>``.
        :param id: the record's id.
        :param principal: whose visibility applies, or ``None`` for the system.
        :param context: the running application.
        :param session: the caller's open ``AsyncSession``, or ``None``. Read in it
            when given: a request that has already written holds SQLite's write
            lock, and a second session of the same process would wait for it.
        :returns: ``None`` when the kind is not yours, else an awaitable of the
            record as a mapping (or ``None`` when it does not exist or is hidden).
        """

    @hookspec
    def crm2_reassign_user(
        self,
        from_user: uuid.UUID,
        to_user: uuid.UUID,
        session: Any,
        actor: Principal | None,
        context: Crm2Context,
    ) -> Awaitable[Mapping[str, int]] | Mapping[str, int] | None:
        """Hand every record ``from_user`` owns in this plugin to ``to_user``.

        Called by ``POST /api/v1/auth/users/{id}/reassign`` (a user who owns
        records cannot be deleted). Apply your own rules: bump versions, publish
        your events through ``session`` (the request's transaction; never commit).
        Records you leave behind are named in the endpoint's 409.

        :param from_user: the user whose records move.
        :param to_user: an active user who takes them over.
        :param session: the request's ``AsyncSession``.
        :param actor: who asked, or ``None`` for the system.
        :param context: the running application.
        :returns: records moved by table name (or an awaitable of it); ``None``
            when the plugin owns nothing of users.
        """
