"""A plugin's ``crm2 <plugin> …`` commands: run async work against the configured database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_with_context(work: Callable[[Any], Awaitable[T]], *, sync_roles: bool = False) -> T:
    """Build the application context from the environment, run ``work(context)``, close it.

    ``sync_roles`` records the permissions and built-in roles first, for commands
    that may run on a database that was migrated but never served.
    """
    from crm2_core.auth.plugin import sync_permissions
    from crm2_core.cli.main import load_context, run_async

    context = load_context()

    async def main() -> T:
        try:
            if sync_roles:
                await sync_permissions(context)
            return await work(context)
        finally:
            await context.engine.dispose()

    return run_async(main())
