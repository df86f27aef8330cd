"""The first admin: from CRM2_ADMIN_EMAIL / CRM2_ADMIN_PASSWORD, or generated and printed once."""

from __future__ import annotations

import logging
import secrets

from rich.console import Console

from crm2_core.auth import repository as repo
from crm2_core.auth.plugin import sync_permissions
from crm2_core.auth.schemas import UserCreate
from crm2_core.context import AppContext

log = logging.getLogger(__name__)
DEFAULT_ADMIN_EMAIL = "admin@example.com"


async def ensure_first_admin(context: AppContext, console: Console) -> None:
    await sync_permissions(context)
    settings = context.settings
    async with context.session_factory() as session:
        if await repo.count_users(session) > 0:
            return
        email = settings.admin_email or DEFAULT_ADMIN_EMAIL
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
        data = UserCreate(
            email=email, password=password, roles=["admin"], full_name="Administrator"
        )
        await context.state["auth"].create_user(session, data)
        await session.commit()
    if generated:
        console.print(
            f"[bold]First admin created[/bold] — e-mail: {email}  password: {password}\n"
            "This password is shown once; change it or create your own admin."
        )
    else:
        console.print(f"First admin created: {email} (password from CRM2_ADMIN_PASSWORD)")
