"""A plugin's ``crm2 <plugin> …`` commands: run async work against the configured database."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from crm2_core.errors import ConfigurationError

T = TypeVar("T")


def env_count(
    variable: str, default: int, *, minimum: int = 0, maximum: int = 1_000_000_000
) -> int:
    """A whole number from the environment (``CRM2_SEED_DEALS=50000``), ``default`` when unset.

    :raises ConfigurationError: naming ``variable`` when it is not a whole number from
        ``minimum`` to ``maximum``.
    """
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    value = int(raw) if raw.isascii() and raw.lstrip("-").isdigit() and len(raw) < 20 else None
    if value is None or not minimum <= value <= maximum:
        raise ConfigurationError(
            f"{variable} must be a whole number from {minimum} to {maximum}, not {raw[:20]!r}"
        )
    return value


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
