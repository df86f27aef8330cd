"""The first admin: from CRM2_ADMIN_EMAIL / CRM2_ADMIN_PASSWORD, or generated and printed once.

Made whenever no active admin exists (not only on an empty user table), so that
a data set seeded before the first start (demo agents, say) still gets one.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from pydantic import ValidationError

from crm2_core.auth import repository as repo
from crm2_core.auth.plugin import sync_permissions
from crm2_core.auth.schemas import UserCreate, normal_email
from crm2_core.context import AppContext
from crm2_core.db.turns import take_turns
from crm2_core.errors import ConfigurationError

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger(__name__)
DEFAULT_ADMIN_EMAIL = "admin@example.com"
BOOTSTRAP_LOCK = 0x63726D33


async def ensure_first_admin(context: AppContext, console: Console | None = None) -> None:
    """Make the first admin when no active one exists; says so on ``console`` (the CLI's)."""
    await sync_permissions(context)
    settings = context.settings
    async with context.session_factory() as session:
        # Several `crm2 serve` processes may start at once on a fresh database: one
        # creates the admin, the others wait here and then find it.
        await take_turns(session, BOOTSTRAP_LOCK)
        if await repo.count_active_admins(session) > 0:
            return
        # as accounts are stored and signed in to: a decomposed é, a punycode domain or
        # capitals in CRM2_ADMIN_EMAIL must find the account that address signs in as
        email = normal_email(settings.admin_email or DEFAULT_ADMIN_EMAIL)
        if await repo.user_by_email(session, email) is not None:
            log.warning(
                "no active admin, and %s exists without the admin role: grant it with "
                "PATCH /api/v1/auth/users/{id} or `crm2 users create` another",
                email,
            )
            return
        if settings.admin_password is not None:
            password, generated = settings.admin_password.get_secret_value(), False
        elif settings.env == "development":
            password, generated = secrets.token_urlsafe(12), True
        else:
            log.warning(
                "no users yet: set CRM2_ADMIN_EMAIL and CRM2_ADMIN_PASSWORD "
                "or run `crm2 users create --role admin`"
            )
            return
        try:
            data = UserCreate(
                email=email, password=password, roles=["admin"], full_name="Administrator"
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"CRM2_ADMIN_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigurationError(f"cannot create the first admin: {problems}") from None
        await context.auth.create_user(session, data)
        await session.commit()
    if console is None:
        from crm2_core.cli.output import console as cli_console

        console = cli_console()
    if generated:
        console.print(
            f"[bold]First admin created[/bold] — e-mail: {email}  password: {password}\n"
            "This password is shown once; change it or create your own admin."
        )
    else:
        console.print(f"First admin created: {email} (password from CRM2_ADMIN_PASSWORD)")
