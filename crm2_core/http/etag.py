"""ETag / If-Match for optimistic concurrency on every versioned row."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Request

from crm2_core.errors import PreconditionFailed, PreconditionRequired

# ASCII digits only, and few of them: str.isdigit() also takes "²" (which int() refuses)
# and int() refuses more than 4,300 digits; a version never needs 20.
_ETAG = re.compile(r'"v([0-9]{1,19})"')
MAX_TAGS = 20


def etag_for(version: int) -> str:
    return f'"v{version}"'


def versions_from_if_match(if_match: str) -> frozenset[int] | None:
    """The versions an ``If-Match`` names (RFC 9110 allows a list of them); ``None`` for
    ``*``. A weak ``W/`` tag counts as its version: some proxies weaken what they pass on."""
    value = if_match.strip()
    if value == "*":
        return None
    tags = value.split(",")
    versions = [_ETAG.fullmatch(tag.strip().removeprefix("W/")) for tag in tags[:MAX_TAGS]]
    if len(tags) <= MAX_TAGS and all(versions):
        return frozenset(int(match[1]) for match in versions if match)
    shown = if_match if len(if_match) <= 40 else if_match[:40] + "…"
    raise PreconditionFailed(f"If-Match {shown!r} is not an ETag this server issued")


async def require_if_match(request: Request) -> str:
    value = request.headers.get("if-match")
    if not value:
        raise PreconditionRequired(
            "this update needs an If-Match header with the ETag of your last read"
        )
    return value


IfMatchDep = Annotated[str, Depends(require_if_match)]
# A write where If-Match is optional (a DELETE): OpenAPI lists the header and the 412.
OptionalIfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="optional; when sent, another version is 412"),
]


def check_version(if_match: str | None, current_version: int) -> int:
    """Raise 412 unless ``if_match`` names ``current_version``; return the version to expect.

    ``None`` (an optional If-Match that was not sent) checks nothing.
    """
    if if_match is None:
        return current_version
    expected = versions_from_if_match(if_match)
    if expected is not None and current_version not in expected:
        named = ", ".join(map(str, sorted(expected)))
        raise PreconditionFailed(
            f"the resource is at version {current_version}, your If-Match names {named}; "
            "read it again and retry"
        )
    return current_version
