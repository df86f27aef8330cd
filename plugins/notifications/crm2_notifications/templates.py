"""Rule templates: Jinja2's sandbox, so an admin's template can read the event, never run code.

Templates see ``event`` (the envelope), ``data`` (its payload), ``type``,
``subject``, ``actor`` and ``record`` (the rule's record through
``crm2_resolve_entity``, when it names one). A missing value renders empty.
Beyond the sandbox's own checks (no attribute starting with ``_``, no unsafe
callables), ``**`` is refused and ``*`` may not build strings or lists longer
than a few thousand items, and rendering stops once ``MAX_OUTPUT`` characters are
made. Nor the CPU: every loop turn, every item ``range()`` yields and every call (a
macro's too) takes a step of a render's budget of ``MAX_STEPS`` and ``MAX_SECONDS``;
past it the render stops (``TemplateTooCostly``). Nested loops that print nothing are
otherwise never stopped by the output limit. Nor memory where the output limit does
not look (a macro's or ``{% set %}`` block's text, ``~``, ``+``, filters, string
methods): every value printed or built counts against ``MAX_CHARS`` for the render,
and arguments that would build a huge value at once (``center(10000000)``,
``"%9999999s"|format``, ``replace`` multiplying a text) are refused.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crm2_core.api import unstorable_text

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_REPEAT = 5_000
MAX_OUTPUT = 20_000
MAX_STEPS = 100_000  # loop turns + range() items + calls: ~50 ms of a render
MAX_SECONDS = 0.5  # and a clock, for steps made slow by heavy filters
COUNTED = "crm2_counted"  # the filter every ``{% for %}`` iterates through
MADE = "crm2_made"  # the filter every printed expression and ``~`` goes through
MAX_CHARS = 2_000_000  # characters (or items) printed and built in one render
MAX_ARGUMENT = 100_000  # a number a filter or a string method may be given
# a printf width or precision of 6+ digits or taken from the arguments (``*``); a
# str.format spec with one, or with a nested field (``{:>{}}``)
_HUGE_PRINTF = re.compile(r"%[-#0 +]*(\*|\d{6})|%[-#0 +]*\d*\.(\*|\d{6})")
_HUGE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*(\{|\d{6})")
# compiled templates kept (least recently used dropped first): a rule's three texts
# times the rules that fire often; compiling one is ~1 ms, rendering it far less
COMPILED_CACHE_SIZE = 512


class TemplateInvalid(ValueError):
    """A template that does not parse (or asks for something the sandbox refuses)."""


class TemplateTooCostly(RuntimeError):
    """A render that used up its budget of steps or time."""


POLITE_EVERY = 16  # steps between looks at the clock, in a worker thread
POLITE_SLICE = 0.001  # how long a render in a worker thread holds the GIL at a time


@dataclass
class _Budget:
    steps: int = MAX_STEPS
    chars: int = MAX_CHARS
    deadline: float = 0.0
    # rendering in a worker thread: hand the GIL back often, or the event loop's thread
    # gets it only every switch interval (5 ms) and each of its I/O steps waits that long
    polite: bool = False
    slice_ends: float = 0.0


_budget: ContextVar[_Budget | None] = ContextVar("crm2_notifications_template_budget", default=None)


def _charge(steps: int = 1) -> None:
    budget = _budget.get()
    if budget is None:
        return
    budget.steps -= steps
    if budget.steps < 0:
        raise TemplateTooCostly(f"over the budget of {MAX_STEPS} loop turns and calls")
    if budget.steps % 1024 == 0 and time.monotonic() > budget.deadline:
        raise TemplateTooCostly(f"over the budget of {MAX_SECONDS} s")
    if budget.polite and budget.steps % POLITE_EVERY == 0:
        now = time.monotonic()
        if now > budget.slice_ends:
            time.sleep(0)  # releases the GIL: a waiting thread (the loop's) takes it now
            budget.slice_ends = now + POLITE_SLICE


def _made(value: Any) -> Any:
    """``value``, its size charged to the render's budget of characters."""
    budget = _budget.get()
    if budget is not None and isinstance(value, str | list | tuple | dict):
        budget.chars -= len(value)
        if budget.chars < 0:
            raise TemplateTooCostly(f"over the budget of {MAX_CHARS} characters made")
    return value


def _refuse_huge(subject: Any, params: list[Any], method: str) -> None:
    """Arguments that would make one huge value before its size could be charged:
    ``subject`` is the text (or value) worked on, ``params`` what the template passed."""
    if method in ("format", "format_map", "%"):  # the subject is the format
        huge = _HUGE_PRINTF if method == "%" else _HUGE_FORMAT
        if isinstance(subject, str) and huge.search(subject):
            raise TemplateTooCostly("a format width or precision too large")
        return
    if any(isinstance(v, int) and abs(v) > MAX_ARGUMENT for v in params):
        raise TemplateTooCostly(f"a number over {MAX_ARGUMENT} given to {method}")
    texts = [v for v in params if isinstance(v, str)]
    if method == "replace" and isinstance(subject, str) and len(texts) >= 2:
        old, new = texts[:2]
        grows = max(0, len(new) - len(old)) * (subject.count(old) if old else len(subject) + 1)
        if len(subject) + grows > MAX_CHARS:
            raise TemplateTooCostly("replace() would make a text too large")


def _guarded_filter(name: str, function: Any) -> Any:
    """A built-in filter whose arguments are checked and whose result is charged
    (``functools.wraps`` keeps Jinja's ``pass_context`` marks)."""
    skip = 1 if hasattr(function, "jinja_pass_arg") else 0  # the context or environment

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        subject = args[skip] if len(args) > skip else None
        params = [*args[skip + 1 :], *kwargs.values()]
        _refuse_huge(subject, params, "%" if name == "format" else name)
        return _made(function(*args, **kwargs))

    return guarded


def _counted(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        _charge()
        yield item


class _Range:
    """``range()`` in templates: lazy like Python's, each item it yields a step."""

    def __init__(self, *args: int) -> None:
        self.items = range(*args)
        if len(self.items) > MAX_STEPS:
            raise TemplateTooCostly(f"range() of more than {MAX_STEPS} items")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        return self.items[index]

    def __contains__(self, item: object) -> bool:
        return item in self.items

    def __iter__(self) -> Iterator[int]:
        return _counted(self.items)


@functools.cache
def _sandbox() -> ImmutableSandboxedEnvironment:
    """The sandbox every template runs in, made at the first template.

    Jinja2 is imported here, not with the module: a server renders templates only when
    a rule fires or is saved, and importing it was ~20 ms of every ``crm2 serve`` start.
    """
    from jinja2 import ChainableUndefined, nodes
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def _filtered(node: nodes.Node, name: str) -> nodes.Filter:
        return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**", "+", "%"])

        def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
            tree = super()._parse(source, name, filename)
            for loop in list(tree.find_all(nodes.For)):  # each turn of every loop: a step
                loop.iter = _filtered(loop.iter, COUNTED)
            for concat in list(tree.find_all(nodes.Concat)):  # ``a ~ b``: charged
                concat.nodes = [_filtered(n, MADE) for n in concat.nodes]
            for output in list(tree.find_all(nodes.Output)):  # printed, in a macro too
                output.nodes = [
                    n
                    if isinstance(n, nodes.TemplateData)
                    else nodes.Filter(n, MADE, [], [], None, None)
                    for n in output.nodes
                ]
            return tree

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _charge()
            method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped
            if isinstance(getattr(method, "__self__", None), str):  # a string's method
                _refuse_huge(method.__self__, [*args, *kwargs.values()], method.__name__)
            return _made(super().call(__context, __obj, *args, **kwargs))

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**":
                raise SecurityError("the power operator is not allowed in templates")
            if operator == "%" and isinstance(left, str):  # printf: "%9999999s" % x
                _refuse_huge(left, [], "%")
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and count * max(len(seq), 1) > MAX_REPEAT:
                    raise SecurityError("repetition too large")
            return _made(super().call_binop(context, operator, left, right))

    sandbox = Sandbox(undefined=ChainableUndefined, autoescape=False)
    for name, function in list(sandbox.filters.items()):
        sandbox.filters[name] = _guarded_filter(name, function)
    sandbox.filters[COUNTED] = _counted
    sandbox.filters[MADE] = _made
    sandbox.globals["range"] = _Range
    # lipsum(n) makes n paragraphs in one call, before any budget could look (a
    # lipsum(99999) was half a minute of CPU): no notification needs filler text
    del sandbox.globals["lipsum"]
    return sandbox


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(template: str) -> Template:
    """The template compiled in the sandbox, once per text (``lru_cache`` is thread-safe).

    Keyed by the text alone: the sandbox, its filters and limits are the same for every
    template of the process (one ``_sandbox()``), and the budget is not compiled in but
    read from the render's own context, so one compiled template serves every render,
    in any thread. An edited rule is another text: it compiles anew, the old one ages out.
    """
    return _sandbox().from_string(template)


def compiled_cache_size() -> int:
    """How many compiled templates are kept now (at most ``COMPILED_CACHE_SIZE``)."""
    return _compiled.cache_info().currsize


def check(template: str, *, polite: bool = False) -> None:
    """Refuse, at save time, a template that does not parse, or whose render on an
    empty event already goes over the budget (one that does so only with some event's
    data renders ``[template error: TemplateTooCostly]`` then)."""
    from jinja2 import TemplateError

    try:
        _compiled(template)
    except TemplateError as exc:
        raise TemplateInvalid(f"template {template[:60]!r}: {exc}") from exc
    try:
        _budgeted(template, variables({}, None), polite=polite)
    except TemplateTooCostly as exc:
        raise TemplateInvalid(f"template {template[:60]!r}: {exc}") from exc
    except Exception:  # any other failure at run time depends on the event's data
        return


async def render_all(sources: Sequence[str], variables: Mapping[str, Any]) -> list[str]:
    """:func:`render` of each source, in a worker thread, one hop for all of them.

    A render may use its whole budget (``MAX_SECONDS``, half a second of CPU): on the
    event loop that would hold every other delivery, handler and stream of the process.
    The budget still bounds it (its steps and clock are this render's own, set in the
    thread), so a thread is never left running past it.
    """
    return await asyncio.to_thread(
        lambda: [render(source, variables, polite=True) for source in sources]
    )


async def check_all(sources: Sequence[str]) -> None:
    """:func:`check` of each source, in a worker thread (as :func:`render_all`)."""

    def check_each() -> None:
        for source in sources:
            check(source, polite=True)

    await asyncio.to_thread(check_each)


def render(template: str, variables: Mapping[str, Any], *, polite: bool = False) -> str:
    """The rendered text; a template failing at run time renders as its raw source.

    Characters no text column can hold (NUL, a lone surrogate: ``"%c"|format(0)``
    makes one) become U+FFFD, or storing the notification would fail the event.
    """
    try:
        text = _budgeted(template, variables, polite=polite)
    # any failure: a filter given data it cannot take raises what it likes
    # (``"text"|dictsort``: AttributeError, ``[]|random``: IndexError), and the rule's
    # event must still make its notification, and every other rule's
    except Exception as exc:
        text = f"[template error: {type(exc).__name__}]"
    return _storable(text[:MAX_OUTPUT])


def _budgeted(template: str, variables: Mapping[str, Any], *, polite: bool = False) -> str:
    """The render, within a budget of its own (the steps are charged in this context)."""
    token = _budget.set(_Budget(deadline=time.monotonic() + MAX_SECONDS, polite=polite))
    try:
        return _bounded(_compiled(template).generate(**variables))
    finally:
        _budget.reset(token)


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


_LINK = re.compile(r"^(/(?![/\\])|https?://)", re.IGNORECASE)


def safe_link(rendered: str) -> str | None:
    """A rendered link kept only as a path on this site (``/deals/1``) or an http(s) URL.

    Its text comes from event data a user may have typed, and it ends in the feed's and
    an e-mail's ``href``: ``javascript:``, ``data:`` and the like (however cased or split
    by tabs, which browsers ignore), and ``//host`` or ``/\\host`` (another site), are dropped.
    """
    link = rendered.strip()
    if not link or not _LINK.match(link) or any(ord(c) < 0x20 or c == "\x7f" for c in link):
        return None
    return link


def variables(envelope: Mapping[str, Any], record: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "event": envelope,
        "data": envelope.get("data") or {},
        "type": envelope.get("type"),
        "subject": envelope.get("subject"),
        "actor": envelope.get("actor") or {},
        "record": record or {},
    }
