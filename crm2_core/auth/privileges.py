"""Nobody grants what they do not hold.

A caller may give a role, a key or a permission only when their own effective
permissions already contain everything it carries; ``"*"`` (the admin role) is
given only by a caller holding ``"*"``. The same rule protects people: a caller
may change, deactivate, reset or delete only a user whose permissions they hold
themselves, so only a full admin touches an admin. Changing one's own roles
needs ``"*"`` too, through one's own API key as well (a key acts for its creator).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from crm2_core.auth.errors import PrivilegeEscalation
from crm2_hookspecs import Principal

EVERYTHING = "*"


def missing(held: frozenset[str], wanted: Iterable[str]) -> list[str]:
    """The permissions of ``wanted`` that ``held`` does not cover, sorted."""
    if EVERYTHING in held:
        return []
    return sorted({p for p in wanted if p not in held})


def require_covered(held: frozenset[str], wanted: Iterable[str], what: str) -> None:
    """Raise ``PrivilegeEscalation`` naming ``what`` unless ``held`` covers ``wanted``."""
    lacking = missing(held, wanted)
    if lacking:
        shown = ", ".join(lacking[:10]) + (" …" if len(lacking) > 10 else "")
        raise PrivilegeEscalation(
            f"{what} needs permissions you do not hold: {shown}", missing=lacking
        )


def acting_user(principal: Principal) -> uuid.UUID:
    """The user a principal acts for: the caller, or the user who created the API key."""
    creator = principal.attributes.get("created_by") if principal.kind == "api_key" else None
    return creator if isinstance(creator, uuid.UUID) else principal.id
