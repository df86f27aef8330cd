"""``GET /api/v1/streams/{channel}``, ``POST /api/v1/streams/token`` and ``/asyncapi.json``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator, Field

from crm2_core.auth import CurrentPrincipal, has_permission
from crm2_core.errors import BadRequest, Forbidden, ServiceUnavailable, Unauthorized
from crm2_core.events.asyncapi import asyncapi_document
from crm2_core.http.deps import ContextDep
from crm2_core.http.problems import problem_responses
from crm2_core.http.routing import APIRouter
from crm2_core.http.security import NO_STORE
from crm2_core.schemas import INT64_MAX, RequestModel, ResponseModel
from crm2_core.streams.channels import RegisteredChannel, get_channel
from crm2_core.streams.connection import Connection
from crm2_core.streams.response import SseResponse
from crm2_core.streams.service import Streams
from crm2_core.streams.tokens import issue_stream_token, principal_from_stream_token
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext


router = APIRouter(prefix="/api/v1/streams", tags=["streams"])
asyncapi_router = APIRouter()

SEND_TIMEOUT_SECONDS = 30.0  # a client that takes no bytes for this long is dropped
# A position another process has just sent may not be visible here yet: look again
# this often before calling a Last-Event-ID beyond the log's end.
END_CHECKS, END_CHECK_SECONDS = 4, 0.1


class StreamTokenRequest(RequestModel):
    channel: str = Field(max_length=64, description="the channel the token opens")


class StreamToken(ResponseModel):
    token: str
    expires_in: int


def _streams(context: AppContext) -> Streams:
    streams: Streams = context.streams
    return streams


def _check_permission(request: Request, principal: Principal, channel: RegisteredChannel) -> None:
    if not has_permission(request, principal, channel.permission):
        raise Forbidden(f"stream {channel.name} needs the {channel.permission} permission")


def event_position(text: str) -> int | None:
    """``text`` as a log position if it is written as this server writes ids (``id: 1042``):
    ASCII digits only. ``int()`` also takes ``1_0``, ``+5``, ``-0``, other scripts' digits
    and surrounding Unicode spaces. Past ``INT64_MAX`` it is still a number (beyond the
    log's end); past 100 digits ``None``, before ``int()`` spends time on it."""
    if not (text.isascii() and text.isdigit()) or len(text) > 100:
        return None
    return int(text)


def _query_position(value: object) -> object:
    if isinstance(value, str) and event_position(value) is None:
        raise ValueError("must be an event id this server sent: ASCII digits only")
    return value


# The bounds before the validator: after it, pydantic writes them as ``ge``/``le`` beside
# the ``anyOf`` in the OpenAPI document instead of ``minimum``/``maximum`` inside it.
EventPosition = Annotated[int, Field(ge=0, le=INT64_MAX), BeforeValidator(_query_position)]


def _last_event_id(header: str | None, query: int | None) -> int | None:
    """The header wins over the query; an empty header is no header (the SSE spec's
    client sends none when its last event id is empty). HTTP's optional whitespace
    around the value is no part of it (RFC 9110 section 5.5); anything else is a 400."""
    if header is None:
        return query
    text = header.strip(" \t")
    if not text:
        return query
    value = event_position(text)
    if value is None:
        raise BadRequest(
            f"Last-Event-ID {text[:40]!r} is not an event id this server sent: "
            "send the id: of the last event received, ASCII digits only"
        )
    return value


async def _check_within_log(streams: Streams, resume: int) -> None:
    """A position past the log's end was never sent: resuming there would drop events."""
    for attempt in range(END_CHECKS):
        end = max(await streams.source.top(), streams.hub.last_position or 0)
        if resume <= end:
            return
        if attempt < END_CHECKS - 1:
            await asyncio.sleep(END_CHECK_SECONDS)
    raise BadRequest(
        f"Last-Event-ID {resume} is beyond the end of the event log ({end}): it is not an "
        "id this server sent; reconnect without it"
    )


@router.post("/token", response_model=StreamToken)
async def create_stream_token(
    body: StreamTokenRequest,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    context: ContextDep,
) -> StreamToken:
    """A short-lived token opening one channel, for clients that cannot send headers.

    A browser ``EventSource`` passes it as ``?token=``; it works for no other
    endpoint and only for the channel named here. A credential: never cached, and not
    kept under an ``Idempotency-Key``.
    """
    channel = get_channel(_streams(context).channels, body.channel)
    _check_permission(request, principal, channel)
    response.headers.update(NO_STORE)
    return StreamToken(
        token=issue_stream_token(
            context,
            principal,
            channel.name,
            principal.attributes.get("credentials_version") if principal.kind == "user" else None,
        ),
        expires_in=context.settings.sse_token_ttl_seconds,
    )


@router.get(
    "/{channel}",
    response_class=SseResponse,
    status_code=200,  # SseResponse's __init__ has no status_code for OpenAPI to read
    response_description="Server-Sent Events; see /asyncapi.json",
    responses=problem_responses(503),
    # Either credential opens a stream (the route reads them itself).
    openapi_extra={"security": [{"bearer": []}, {"streamToken": []}]},
)
async def stream(
    channel: str,
    request: Request,
    context: ContextDep,
    token: Annotated[
        str | None, Query(description="a stream token from POST /api/v1/streams/token")
    ] = None,
    last_event_id: Annotated[
        EventPosition | None,
        Query(description="resume after this id (when the header is unset)"),
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> SseResponse:
    """Live events of one channel: ``id:`` log position, ``event:`` type, ``data:`` envelope.

    Authenticate with ``Authorization: Bearer`` (access token or API key) or
    ``?token=``. ``Last-Event-ID`` (or ``?last_event_id=``) replays what was
    missed from the log first. Heartbeat comments keep proxies from timing
    out; the server ends a stream with an ``event: reconnect`` message and a
    ``retry:`` hint when its lifetime is over, when the client falls too far
    behind, or at shutdown.
    """
    streams = _streams(context)
    registered = get_channel(streams.channels, channel)
    principal: Principal | None
    if token is not None:
        principal = await principal_from_stream_token(context, token, registered.name)
    else:
        principal = await context.authenticator.from_scope(request.scope)
    if principal is None:
        raise Unauthorized(
            "send Authorization: Bearer <access token or API key>, or ?token=<stream token>"
        )
    _check_permission(request, principal, registered)
    resume = _last_event_id(last_event_id_header, last_event_id)
    try:
        await streams.hub.ready()
        if resume is not None:
            await _check_within_log(streams, resume)
    except BadRequest:
        raise
    except Exception as exc:
        raise ServiceUnavailable("the event log cannot be read; retry shortly") from exc
    release = streams.claim(principal)
    try:
        connection = Connection(streams, registered, principal, resume)
        return SseResponse(
            connection.events(),
            on_disconnect=connection.disconnect,
            on_writer=connection.use_writer,
            on_close=release,
            send_timeout=SEND_TIMEOUT_SECONDS,
        )
    except BaseException:
        release()
        raise


@asyncapi_router.get("/asyncapi.json", include_in_schema=False)
async def asyncapi(context: ContextDep) -> JSONResponse:
    """AsyncAPI 3.0 document of every enabled event type and stream channel."""
    return JSONResponse(asyncapi_document(context))
