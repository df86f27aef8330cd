"""Compiled templates are cached: a fan-out (the same rule for many events and people)
renders without compiling its templates again; the cache is bounded and keyed by the
template's text, so an edited rule simply compiles anew."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from crm2_notifications import templates


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every template source the sandbox compiles from now on."""
    sandbox = templates._sandbox()
    seen: list[str] = []
    original = sandbox.compile

    def counting(source: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(source))
        return original(source, *args, **kwargs)

    monkeypatch.setattr(sandbox, "compile", counting)
    return seen


async def test_rendering_a_template_again_does_not_compile_it_again(
    compiles: list[str],
) -> None:
    source = f"Deal {{{{ data.title }}}} won ({uuid.uuid4()})"  # a text no other test used
    for i in range(20):
        event = {"type": "deals.deal.won", "data": {"title": f"n{i}"}}
        (text,) = await templates.render_all([source], templates.variables(event, None))
        assert text.startswith(f"Deal n{i} won")
    assert len(compiles) == 1


async def test_an_edited_template_renders_its_new_text(compiles: list[str]) -> None:
    tag = uuid.uuid4()
    first, edited = f"A {{{{ subject }}}} {tag}", f"B {{{{ subject }}}} {tag}"
    variables = templates.variables({"subject": "s"}, None)
    assert await templates.render_all([first, edited, first], variables) == [
        f"A s {tag}",
        f"B s {tag}",
        f"A s {tag}",
    ]
    assert len(compiles) == 2


def test_the_cache_is_bounded_and_the_budget_still_holds(compiles: list[str]) -> None:
    for i in range(templates.COMPILED_CACHE_SIZE + 20):
        templates.render(f"{{{{ {i} }}}} {uuid.uuid4()}", {})
    assert templates.compiled_cache_size() <= templates.COMPILED_CACHE_SIZE
    costly = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    for _ in range(2):  # the cached template is still budgeted, each render on its own
        assert templates.render(costly, {}) == "[template error: TemplateTooCostly]"
