"""The W3C ``traceparent`` of the current span, when OpenTelemetry is installed and recording.

Kept apart from ``tracing`` so that publishing an event costs one context lookup
when traces are off, and nothing at all without the extra.
"""

from __future__ import annotations

try:
    from opentelemetry import trace as _trace
except ImportError:  # the tracing extra is not installed
    _trace = None  # type: ignore[assignment]


def current_traceparent() -> str | None:
    """``00-<trace id>-<span id>-<flags>`` of the recording span in this context, else None."""
    if _trace is None:
        return None
    span_context = _trace.get_current_span().get_span_context()
    if not span_context.is_valid or not span_context.trace_flags.sampled:
        return None
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
        f"{int(span_context.trace_flags):02x}"
    )
