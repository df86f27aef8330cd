"""Routes that read their request body as a stream (file uploads).

The core's ``BodyMiddleware`` reads every body into memory, bounded by
``CRM2_MAX_BODY_BYTES``, so that the idempotency layer can hash it. A route
that takes files marks itself with ``openapi_extra=STREAMED_BODY``: its body
then reaches it unread (``request.stream()``) and the route enforces its own
size limit while reading. ``Idempotency-Key`` still works on such a route: its
fingerprint covers the bytes, hashed as the route reads them, and the key is
claimed once the body has been read to its end (``idempotency_body``).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import Match

STREAMED_BODY_KEY = "x-crm2-streamed-body"
# ``openapi_extra`` of a route whose body is read as a stream.
STREAMED_BODY: dict[str, Any] = {STREAMED_BODY_KEY: True}


def streamed_routes(routes: Sequence[APIRoute]) -> Callable[[MutableMapping[str, Any]], bool]:
    """A predicate over an ASGI scope: does it go to a route marked ``STREAMED_BODY``?

    ``routes`` is read at the first request (routes are mounted after middleware
    is declared), then kept.
    """
    chosen: list[APIRoute] | None = None

    def matches(scope: MutableMapping[str, Any]) -> bool:
        nonlocal chosen
        if chosen is None:
            chosen = [r for r in routes if (r.openapi_extra or {}).get(STREAMED_BODY_KEY)]
        for route in chosen:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return True
        return False

    return matches
