"""Cutting text on a user-perceived character's edge (stdlib only).

A cut at a code point may split a grapheme cluster: a ZWJ emoji sequence (a family
is seven code points), a flag (two regional indicators), a skin tone, a keycap, a
letter and its combining marks, a Hangul syllable of jamo. The rules here are the
parts of UAX #29 that keep those whole; a cut only ever moves back to an edge.
"""

from __future__ import annotations

import unicodedata

ZWJ = "\u200d"


def _between(cp: int, *ranges: tuple[int, int]) -> bool:
    return any(low <= cp <= high for low, high in ranges)


def _extends(char: str) -> bool:
    """No break before it (GB9, GB9a): marks, ZWJ, variation selectors, skin tones, tags."""
    cp = ord(char)
    return (
        char == ZWJ
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
        or _between(cp, (0xFE00, 0xFE0F), (0xE0100, 0xE01EF))  # variation selectors
        or _between(cp, (0x1F3FB, 0x1F3FF))  # emoji modifiers (skin tones)
        or _between(cp, (0xE0020, 0xE007F))  # tags (subdivision flags)
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _jamo_joins(before: str, after: str) -> bool:
    """Conjoining Hangul jamo (GB6-GB8), kept together whatever precedes them."""
    lead = ((0x1100, 0x115F), (0xA960, 0xA97F))
    vowel_or_trail = ((0x1160, 0x11FF), (0xD7B0, 0xD7FF))
    if _between(ord(after), *vowel_or_trail):
        return True
    return _between(ord(before), *lead) and (
        _between(ord(after), *lead) or _between(ord(after), (0xAC00, 0xD7A3))
    )


def is_boundary(text: str, index: int) -> bool:
    """Whether ``text[:index]`` ends on a grapheme cluster's edge."""
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if _extends(after) or before == ZWJ or _jamo_joins(before, after):
        return False
    if _regional(before) and _regional(after):
        run = 0  # regional indicators pair up from the start of their run
        while index - run - 1 >= 0 and _regional(text[index - run - 1]):
            run += 1
        return run % 2 == 0
    return True


# the longest real clusters (emoji ZWJ sequences, tag flags) are about ten code points;
# beyond 30 marks Unicode's stream-safe format breaks a cluster up anyway
MAX_CLUSTER = 32


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, never ending inside a grapheme cluster
    (an edge further back than ``MAX_CLUSTER`` — stacked marks — is not looked for:
    the text is cut hard there rather than lose all it carries)."""
    if len(text) <= limit:
        return text
    end = limit
    while end > max(0, limit - MAX_CLUSTER) and not is_boundary(text, end):
        end -= 1
    return text[:end] if is_boundary(text, end) and end > 0 else text[:limit]
