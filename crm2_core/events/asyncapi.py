"""An AsyncAPI 3.0 document of the enabled event types and SSE channels.

Served at ``/asyncapi.json`` and printed by ``crm2 events schema``, so that a
frontend or an integrator can generate code for the events and streams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm2_core import __version__
from crm2_core.events.envelope import Envelope
from crm2_core.events.types import EventData

if TYPE_CHECKING:
    from crm2_core.context import AppContext


REF = "#/components/schemas/{model}"


def _message_name(cls: type[EventData]) -> str:
    return f"{cls.event_type}.v{cls.event_version}"


def asyncapi_document(context: AppContext) -> dict[str, Any]:
    bus = context.events
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    envelope = Envelope.model_json_schema(ref_template=REF)
    schemas.update(envelope.pop("$defs", {}))
    schemas["Envelope"] = envelope

    for cls in bus.types.all():
        name = _message_name(cls)
        data = cls.model_json_schema(ref_template=REF)
        schemas.update(data.pop("$defs", {}))
        data_name = f"{name}.data"
        schemas[data_name] = data
        messages[name] = {
            "name": cls.event_type,
            "title": cls.event_type,
            "summary": (cls.__doc__ or "").strip().split("\n")[0],
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {
                    "type": {"const": cls.event_type},
                    "version": {"const": cls.event_version},
                },
            },
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": cls.event_type},
                            "version": {"const": cls.event_version},
                            "data": {"$ref": f"#/components/schemas/{data_name}"},
                        },
                    },
                ]
            },
        }
        channels[name] = {
            "address": cls.event_type,
            "description": f"Broker deliveries of {cls.event_type} (version {cls.event_version}).",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"receive.{name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
        }

    for plugin, channel in context.plugins.collect("crm2_sse_channels", context=context):
        key = f"stream.{channel.name}"
        carried = {
            _message_name(cls): {"$ref": f"#/components/messages/{_message_name(cls)}"}
            for cls in bus.types.all()
            if channel.matches(cls.event_type)
        }
        channels[key] = {
            "address": f"/api/v1/streams/{channel.name}",
            "title": f"{plugin}: live stream {channel.name}",
            "description": (
                "Server-Sent Events: `id:` is the log position, `event:` the type, `data:` the "
                f"envelope. Needs the {channel.permission} permission; resume with Last-Event-ID."
            ),
            "messages": carried,
            "bindings": {"http": {"method": "GET"}},
        }
        operations[f"subscribe.{channel.name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{m}"} for m in carried],
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "crm2 events",
            "version": __version__,
            "description": "Every event type the enabled plugins emit, and the live SSE channels.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
