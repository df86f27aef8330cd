"""Who may call: ``CurrentPrincipal`` and ``require(...)``, route dependencies of the HTTP shell.

The shell asks whichever authenticator the application provides (the auth
default plugin's, ``context.authenticator``); it does not import the auth
package, so auth can build on the shell and not the other way round.
Plugins import these from ``crm2_core.auth``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from crm2_core.errors import Forbidden, Unauthorized
from crm2_core.http.deps import context_of
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext


async def current_principal(request: Request) -> Principal:
    principal = await context_of(request).authenticator.from_scope(request.scope)
    if principal is None:
        raise Unauthorized("send Authorization: Bearer <access token> or an API key")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def has_permission(
    request: Request, principal: Principal, permission: str, resource: object | None = None
) -> bool:
    """Roles grant; any ``crm2_check_permission`` returning ``False`` vetoes."""
    return permitted(context_of(request), principal, permission, resource)


def permitted(
    context: AppContext, principal: Principal, permission: str, resource: object | None = None
) -> bool:
    """:func:`has_permission` outside a request (an open stream checking again)."""
    if not principal.has_permission(permission):
        return False
    vetoes = context.plugins.pm.hook.crm2_check_permission(
        principal=principal, permission=permission, resource=resource
    )
    return all(vote is not False for vote in vetoes)


def require(permission: str) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A dependency that returns the principal when it holds ``permission``, else 403."""

    async def dependency(request: Request, principal: CurrentPrincipal) -> Principal:
        if not has_permission(request, principal, permission):
            raise Forbidden(f"this needs the {permission} permission")
        return principal

    dependency.__name__ = f"require_{permission.replace(':', '_')}"
    return dependency
