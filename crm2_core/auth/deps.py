"""Route dependencies that say who may call: ``CurrentPrincipal`` and ``require(...)``.

They live in the HTTP shell (``crm2_core.http.principal``), which asks the
authenticator this package provides; re-exported here, where plugins find them.
"""

from __future__ import annotations

from fastapi import Request

from crm2_core.auth.authenticator import Authenticator
from crm2_core.http.deps import context_of
from crm2_core.http.principal import CurrentPrincipal, current_principal, has_permission, require

__all__ = [
    "CurrentPrincipal",
    "authenticator_of",
    "current_principal",
    "has_permission",
    "require",
]


def authenticator_of(request: Request) -> Authenticator:
    return context_of(request).authenticator
