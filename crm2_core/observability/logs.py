"""Log lines as text or JSON, with the request, principal, plugin, event and handler in them.

The fields come from context variables, set where the work starts (the HTTP
request, a handler run), so no call site passes them along. Whatever the
format, a redacting filter masks what must never reach a log: bearer tokens,
JWTs, API keys, passwords and Authorization headers.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "crm2_request_id", default=None
)
# The request's ASGI scope: the principal is read from it lazily, once auth has run.
request_scope_var: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "crm2_request_scope", default=None
)
plugin_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("crm2_plugin", default=None)
event_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "crm2_event_id", default=None
)
handler_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "crm2_handler", default=None
)

PRINCIPAL_SCOPE_KEY = "crm2.principal"  # where crm2_core.auth caches the request's principal
REDACTED = "[REDACTED]"
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # a JWT anywhere: three base64url parts, the first two JSON objects ("eyJ")
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Authorization: Bearer …, Basic …, and bare "Bearer <token>"
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    # crm2 API keys
    (re.compile(r"\bcrm2_[A-Za-z0-9_-]{16,}"), REDACTED),
    # password=…, "password": "…", secret/token/api_key the same way
    (
        re.compile(
            r"(?i)([\"']?(?:password|passwd|secret|token|api[_-]?key|authorization)[\"']?"
            r"\s*[:=]\s*[\"']?)([^\s\"',;&}]+)"
        ),
        r"\1" + REDACTED,
    ),
    # credentials inside URLs: scheme://user:password@host
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@"), r"\1" + REDACTED + "@"),
)


def redact(text: str) -> str:
    """``text`` with every secret-looking part replaced by ``[REDACTED]``."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _principal_id() -> str | None:
    scope = request_scope_var.get()
    if scope is None:
        return None
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    principal_id = getattr(principal, "id", None)
    return None if principal_id is None else str(principal_id)


def context_fields() -> dict[str, str]:
    """The correlation fields in force where the log call is made."""
    fields = {
        "request_id": request_id_var.get(),
        "principal_id": _principal_id(),
        "plugin": plugin_var.get(),
        "event_id": event_id_var.get(),
        "handler": handler_var.get(),
    }
    return {k: v for k, v in fields.items() if v is not None}


class RedactingFilter(logging.Filter):
    """Masks secrets in the message and its arguments; adds the context fields to the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.msg, record.args = cleaned, None
        record.crm2 = context_fields()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "crm2", None) or context_fields())
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message`` plus ``[request_id=… handler=…]`` when there are fields."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "crm2", None) or {}
        if fields:
            line += "  [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return line


HANDLER_NAME = "crm2"


def configure_logging(
    level: str = "INFO", log_format: LogFormat = "text", *, force: bool = False
) -> logging.Handler | None:
    """Install crm2's one stderr handler on the root logger (replacing an earlier one).

    Like ``logging.basicConfig``, it leaves a root logger that someone else has already
    given handlers (a host application, pytest) alone unless ``force`` is set.
    """
    root = logging.getLogger()
    if not force and any(h.get_name() != HANDLER_NAME for h in root.handlers):
        return None
    for existing in list(root.handlers):
        if existing.get_name() == HANDLER_NAME:
            root.removeHandler(existing)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's loggers have handlers of their own: route them through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    # SQL statements are logged only when asked for (they carry parameter values).
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    return handler


def configure_from_environment() -> None:
    """``configure_logging`` from ``CRM2_LOG_LEVEL`` / ``CRM2_LOG_FORMAT``; plain text at INFO
    when the settings do not validate (the command then reports what is wrong)."""
    from pydantic import ValidationError

    from crm2_core.settings import Settings

    try:
        settings = Settings()
    except ValidationError:
        configure_logging()
        return
    configure_logging(settings.log_level, settings.log_format)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's ``log_config``: no handlers of its own, so its lines go through ours."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
        },
    }


@contextlib.contextmanager
def handler_context(plugin: str, handler: str, event_id: str) -> Iterator[None]:
    """Log fields for one handler run."""
    tokens = (plugin_var.set(plugin), handler_var.set(handler), event_id_var.set(event_id))
    try:
        yield
    finally:
        event_id_var.reset(tokens[2])
        handler_var.reset(tokens[1])
        plugin_var.reset(tokens[0])


def bind_request(scope: MutableMapping[str, Any], request_id: str) -> tuple[Any, Any]:
    """Log fields for one HTTP request; returns tokens for :func:`unbind_request`."""
    return request_id_var.set(request_id), request_scope_var.set(scope)


def unbind_request(tokens: tuple[Any, Any]) -> None:
    request_scope_var.reset(tokens[1])
    request_id_var.reset(tokens[0])
