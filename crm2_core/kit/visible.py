"""Text shown to people must show what is stored: no hidden or control characters."""

from __future__ import annotations

import unicodedata

# characters that hide or break a text where it is shown: controls (Cc: a newline, a tab),
# format characters such as the zero-width space or a bidi override (Cf), lone surrogates
# (Cs), line and paragraph separators (Zl, Zp). The zero-width (non-)joiners, which some
# scripts and emoji need, only between two characters.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
JOINERS = frozenset({"\u200c", "\u200d"})
# The Basic Multilingual Plane's hidden characters (joiners aside) as a regex class body,
# for the OpenAPI pattern that tells a client (and a fuzzer) what a field may not hold;
# the few beyond it are refused all the same. Written out (a test derives it from
# unicodedata) rather than computed at each start.
HIDDEN_BMP = (
    r"\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891"
    r"\u08e2\u180e\u200b\u200e-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    r"\ufff9-\ufffb"
)


def refuse_hidden(text: str, what: str) -> str:
    """``text`` unless it holds a hidden or control character (a joiner only between two
    characters), else ``ValueError`` naming ``what`` (``"the tag 'a\\nb'"``): refused, not
    cleaned, since a search for what the user sees would never find it, and a bidi
    override would show another text than the one stored."""
    for at, ch in enumerate(text):
        inner = 0 < at < len(text) - 1
        if unicodedata.category(ch) in HIDDEN_CATEGORIES and not (ch in JOINERS and inner):
            raise ValueError(
                f"{what} may not hold the invisible or control character U+{ord(ch):04X}"
            )
    return text
