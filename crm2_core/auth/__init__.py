"""Authentication and authorization: users, roles, permissions, JWT, API keys.

Registered as a default plugin through the same hooks as any other plugin.
Plugins use ``CurrentPrincipal`` and ``require("<plugin>:<action>")`` in routes.
"""

from __future__ import annotations

from crm2_core.auth.deps import CurrentPrincipal, has_permission, require

__all__ = ["CurrentPrincipal", "has_permission", "require"]
