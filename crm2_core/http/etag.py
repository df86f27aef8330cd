"""ETag / If-Match for optimistic concurrency on every versioned row."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Request

from crm2_core.errors import PreconditionFailed, PreconditionRequired

# ASCII digits only, and few of them: str.isdigit() also takes "²" (which int() refuses)
# and int() refuses more than 4,300 digits; a version never needs 20.
_ETAG = re.compile(r'"v([0-9]{1,19})"')
# RFC 9110 entity-tag: [W/] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text.
# Starlette decodes header bytes as latin-1, so obs-text is U+0080..U+00FF here.
# A comma may sit inside one, so the list is read tag by tag, not split on commas; empty
# list elements are allowed (RFC 9110 section 5.6.1).
_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_TAG_LIST = re.compile(rf"[ \t,]*{_ENTITY_TAG}(?:[ \t]*,[ \t,]*{_ENTITY_TAG})*[ \t,]*")
MAX_TAGS = 20


def etag_for(version: int) -> str:
    return f'"v{version}"'


def _shown(if_match: str) -> str:
    return repr(if_match if len(if_match) <= 40 else if_match[:40] + "…")


def versions_from_if_match(if_match: str) -> frozenset[int] | None:
    """The versions an ``If-Match`` names (RFC 9110 allows a list of them); ``None`` for
    ``*``.

    If-Match compares strongly (RFC 9110 section 13.1.1): a weak ``W/`` tag never matches,
    so it names no version, like a well-formed tag this server never issued (``"x"``).
    Such tags are skipped, so a list still matches by its other members; a malformed
    member, or a list with no strong ETag of ours at all, is a 412.
    """
    value = if_match.strip()
    if value == "*":
        return None
    tags = re.findall(_ENTITY_TAG, value) if _TAG_LIST.fullmatch(value) else []
    if not tags or len(tags) > MAX_TAGS:
        raise PreconditionFailed(
            f"If-Match {_shown(if_match)} is not a list of at most {MAX_TAGS} entity tags"
        )
    ours = [_ETAG.fullmatch(tag) for tag in tags]
    versions = frozenset(int(match[1]) for match in ours if match)
    if not versions:
        if any(tag.startswith("W/") for tag in tags):
            raise PreconditionFailed(
                f"If-Match {_shown(if_match)} names no strong ETag of this server; a weak one "
                "(W/) never matches, If-Match compares strongly (RFC 9110): send the ETag "
                'as read (e.g. "v3")'
            )
        raise PreconditionFailed(f"If-Match {_shown(if_match)} is not an ETag this server issued")
    return versions


async def require_if_match(request: Request) -> str:
    """The ``If-Match`` of a write that needs one: an ETag list, never ``*``.

    ``*`` matches any version, so it would skip the lost-update check this requirement
    exists for: 428, like no header. (Where If-Match is optional, ``*`` keeps its
    RFC 9110 meaning: "if the record exists".)
    """
    value = request.headers.get("if-match")
    if not value:
        raise PreconditionRequired(
            "this update needs an If-Match header with the ETag of your last read"
        )
    if value.strip() == "*":
        raise PreconditionRequired(
            "If-Match: * is not taken here: this update needs the ETag of your last read "
            '(e.g. If-Match: "v3"), so that it cannot overwrite a change you have not seen'
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
