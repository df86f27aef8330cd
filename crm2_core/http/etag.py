"""ETag / If-Match for optimistic concurrency on every versioned row."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from crm2_core.errors import PreconditionFailed, PreconditionRequired


def etag_for(version: int) -> str:
    return f'"v{version}"'


def version_from_if_match(if_match: str) -> int | None:
    """The version an ``If-Match`` names; ``None`` for ``*``."""
    value = if_match.strip()
    if value == "*":
        return None
    value = value.removeprefix("W/")
    if len(value) >= 3 and value.startswith('"v') and value.endswith('"') and value[2:-1].isdigit():
        return int(value[2:-1])
    raise PreconditionFailed(f"If-Match {if_match!r} is not an ETag this server issued")


async def require_if_match(request: Request) -> str:
    value = request.headers.get("if-match")
    if not value:
        raise PreconditionRequired(
            "this update needs an If-Match header with the ETag of your last read"
        )
    return value


IfMatchDep = Annotated[str, Depends(require_if_match)]


def check_version(if_match: str | None, current_version: int) -> int:
    """Raise 412 unless ``if_match`` names ``current_version``; return the version to expect.

    ``None`` (an optional If-Match that was not sent) checks nothing.
    """
    if if_match is None:
        return current_version
    expected = version_from_if_match(if_match)
    if expected is not None and expected != current_version:
        raise PreconditionFailed(
            f"the resource is at version {current_version}, your If-Match names {expected}; "
            "read it again and retry"
        )
    return current_version
