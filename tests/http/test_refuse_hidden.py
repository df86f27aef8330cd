"""``refuse_hidden``: text shown to people holds no control or invisible character."""

from __future__ import annotations

import unicodedata

import pytest

from crm2_core.api import HIDDEN_BMP, refuse_hidden


def _hidden_bmp_from_unicodedata() -> str:
    hidden = {"Cc", "Cf", "Cs", "Zl", "Zp"}
    points = [
        c
        for c in range(0x10000)
        if not 0xD800 <= c <= 0xDFFF
        and unicodedata.category(chr(c)) in hidden
        and chr(c) not in "\u200c\u200d"
    ]
    spans: list[list[int]] = []
    for c in points:
        if spans and spans[-1][1] == c - 1:
            spans[-1][1] = c
        else:
            spans.append([c, c])
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in spans)


def test_the_hidden_class_is_unicodes_own() -> None:
    assert _hidden_bmp_from_unicodedata() == HIDDEN_BMP


@pytest.mark.parametrize("text", ["a\nb", "\tx", "x\x7f", "mo\u202etor", "a\u200bb", "\u200da"])
def test_hidden_and_control_characters_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(ValueError, match=r"^a tag may not hold .* U\+[0-9A-F]{4}$"):
        refuse_hidden(text, "a tag")


@pytest.mark.parametrize("text", ["call", "café", "a b", "a\u200db", "日本", ""])
def test_visible_text_passes_unchanged(text: str) -> None:
    assert refuse_hidden(text, "a tag") == text
