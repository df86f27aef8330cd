"""Stream tokens: short-lived JWTs (``typ`` ``stream``) bound to one principal and one channel.

A browser ``EventSource`` cannot send an ``Authorization`` header, so it
passes a stream token as ``?token=``. The token only opens the stream of the
channel it names: the ``typ`` check makes every other endpoint refuse it, and
its short life limits what a leaked URL (access logs, history) gives away.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from crm2_core.errors import Unauthorized
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext

STREAM_TOKEN_TYPE = "stream"


def issue_stream_token(
    context: AppContext, principal: Principal, channel: str, credentials_version: int | None = None
) -> str:
    """``credentials_version``: a user's, so that the token dies with the user's rights."""
    tokens = context.auth.tokens
    extra = {} if credentials_version is None else {"cv": credentials_version}
    return str(
        tokens.encode(
            str(principal.id),
            STREAM_TOKEN_TYPE,
            context.settings.sse_token_ttl_seconds,
            channel=channel,
            kind=principal.kind,
            roles=sorted(principal.roles),
            **extra,
        )
    )


async def principal_from_stream_token(context: AppContext, token: str, channel: str) -> Principal:
    """The principal a stream token names, with its roles' current permissions; else 401."""
    claims = context.auth.tokens.decode(token, STREAM_TOKEN_TYPE)
    if claims.get("channel") != channel:
        raise Unauthorized(
            f"this stream token is for channel {claims.get('channel')!r}, not {channel!r}"
        )
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("invalid token: roles claim malformed")
    try:
        subject = uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise Unauthorized("invalid token: sub is not an id") from exc
    authenticator = context.authenticator
    kind = str(claims.get("kind", "user"))
    version = claims.get("cv")
    # an open stream checks these again when the user's credentials change
    attributes: dict[str, Any] = {}
    if version is not None:  # a signed-in user's: dies with the user's rights
        if not isinstance(version, int) or isinstance(version, bool):
            raise Unauthorized("invalid token: ask for a new stream token")
        await authenticator.check_credentials(subject, version)
        attributes["credentials_version"] = version
    elif kind == "api_key":  # an API key's: dies with the key (revoked or expired)
        key = await authenticator.standing_key(subject)
        attributes["created_by"] = key.created_by  # whose records it sees, as with the key
        attributes.update(key.expiry())
    return Principal(
        id=subject,
        kind=kind,
        roles=frozenset(roles),
        permissions=await authenticator.roles.permissions(roles),
        attributes=attributes,
    )
