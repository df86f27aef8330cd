"""Rule templates: Jinja2's sandbox, so an admin's template can read the event, never run code.

Templates see ``event`` (the envelope), ``data`` (its payload), ``type``,
``subject``, ``actor`` and ``record`` (the rule's record through
``crm2_resolve_entity``, when it names one). A missing value renders empty.
Beyond the sandbox's own checks (no attribute starting with ``_``, no unsafe
callables), ``**`` is refused and ``*`` may not build strings or lists longer
than a few thousand items, and rendering stops once ``MAX_OUTPUT`` characters are
made, so a template cannot exhaust memory.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from crm2_core.api import unstorable_text

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_REPEAT = 5_000
MAX_OUTPUT = 20_000


class TemplateInvalid(ValueError):
    """A template that does not parse (or asks for something the sandbox refuses)."""


@functools.cache
def _sandbox() -> ImmutableSandboxedEnvironment:
    """The sandbox every template runs in, made at the first template.

    Jinja2 is imported here, not with the module: a server renders templates only when
    a rule fires or is saved, and importing it was ~20 ms of every ``crm2 serve`` start.
    """
    from jinja2 import ChainableUndefined
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**":
                raise SecurityError("the power operator is not allowed in templates")
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and count * max(len(seq), 1) > MAX_REPEAT:
                    raise SecurityError("repetition too large")
            return super().call_binop(context, operator, left, right)

    return Sandbox(undefined=ChainableUndefined, autoescape=False)


def check(template: str) -> None:
    """Refuse, at save time, a template that does not parse."""
    from jinja2 import TemplateError

    try:
        _sandbox().parse(template)
    except TemplateError as exc:
        raise TemplateInvalid(f"template {template[:60]!r}: {exc}") from exc


def render(template: str, variables: Mapping[str, Any]) -> str:
    """The rendered text; a template failing at run time renders as its raw source.

    Characters no text column can hold (NUL, a lone surrogate: ``"%c"|format(0)``
    makes one) become U+FFFD, or storing the notification would fail the event.
    """
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    try:
        text = _bounded(_sandbox().from_string(template).generate(**variables))
    except (TemplateError, SecurityError, ArithmeticError, TypeError, ValueError) as exc:
        text = f"[template error: {type(exc).__name__}]"
    return _storable(text[:MAX_OUTPUT])


def _bounded(chunks: Iterator[str]) -> str:
    """The first ``MAX_OUTPUT`` characters, read as they are made: a loop printing a
    few thousand characters a turn stops there instead of filling memory."""
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size >= MAX_OUTPUT:
            break
    return "".join(parts)


def _storable(text: str) -> str:
    if unstorable_text(text) is None:
        return text
    return "".join("\ufffd" if unstorable_text(char) else char for char in text)


def variables(envelope: Mapping[str, Any], record: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "event": envelope,
        "data": envelope.get("data") or {},
        "type": envelope.get("type"),
        "subject": envelope.get("subject"),
        "actor": envelope.get("actor") or {},
        "record": record or {},
    }
