"""``check_storable``: its fast path (one regex search per string or list) refuses what
the item-by-item walk refused, and names where."""

from __future__ import annotations

from typing import Any

import pytest

from crm2_core.schemas import INT64_MAX, check_storable


@pytest.mark.parametrize(
    ("value", "where", "why"),
    [
        ("a\u0000b", "f: ", "NUL"),
        (["ok", "b\u0000"], "f[1]: ", "NUL"),
        # two lone surrogates side by side stay two characters when joined: still refused
        (["x\ud83d", "\ude00y"], "f[0]: ", "surrogate"),
        (("ok", "\udfff"), "f[1]: ", "surrogate"),
        (["ok", INT64_MAX + 1], "f[1]: ", "64-bit"),
        (["ok", ["deep\u0000"]], "f[1][0]: ", "NUL"),
        ({"k": ["v", "\u0000"]}, "f.k[1]: ", "NUL"),
    ],
)
def test_unstorable_values_are_refused_with_their_place(value: Any, where: str, why: str) -> None:
    with pytest.raises(ValueError) as raised:
        check_storable(value, "f")
    assert str(raised.value).startswith(where) and why in str(raised.value)


@pytest.mark.parametrize(
    "value", ["plain", ["a", "b"], [], ("t",), ["a", 1, None], {"k": ["v"]}, "\U0001f600"]
)
def test_storable_values_pass(value: Any) -> None:
    check_storable(value, "f")
