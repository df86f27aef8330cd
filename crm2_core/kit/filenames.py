"""``safe_filename``: the name a client gave a file, fit to store and to show."""

from __future__ import annotations

import re
import unicodedata

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
# Unicode's other characters that hide, reorder or break a name when it is shown: C1
# controls (Cc), format characters such as the bidi overrides that show "gpj.exe" as
# "exe.jpg" (Cf), lone surrogates (Cs) and line or paragraph separators (Zl, Zp). The
# zero-width (non-)joiners are format characters some scripts cannot be written without.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})
MAX_LENGTH = 255


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def safe_filename(raw: str | None, fallback: str = "file") -> str:
    """The last path segment of ``raw``, NFC, each run of control, hidden or path
    characters one ``_``, no leading or trailing dots or spaces, at most 255 characters
    (the extension kept); ``fallback`` when nothing is left."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # hidden characters become NUL first, so one _UNSAFE run takes them with their neighbours
    name = "".join(
        "\x00" if ch not in _JOINERS and unicodedata.category(ch) in _HIDDEN else ch for ch in name
    )
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name:
        return fallback
    if len(name) > MAX_LENGTH:
        extension = _extension(name)[:16]
        name = name[: MAX_LENGTH - len(extension)] + extension
    return name
