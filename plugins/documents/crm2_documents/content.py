"""What a file is, judged from its bytes; names made harmless; the download's headers.

The client's declared type and filename are hints that must agree with the
bytes, never the other way round: a PNG named ``.exe`` or HTML declared as an
image is refused (415). A filename is kept only to be shown and offered back in
``Content-Disposition``; it is never part of a storage path.
"""

from __future__ import annotations

import re
from urllib.parse import quote

SNIFF_BYTES = 4096
OCTET_STREAM = "application/octet-stream"

# type -> the filename extensions that may carry it
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "image/tiff": (".tif", ".tiff"),
    "application/zip": (".zip",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
    "text/plain": (".txt", ".text", ".log", ".md"),
    "text/csv": (".csv",),
    "text/html": (".html", ".htm"),
    "application/x-msdownload": (".exe", ".dll"),
    "application/x-executable": (),
    OCTET_STREAM: (),
}
# Extensions no kind may carry, whatever the bytes look like.
DANGEROUS_EXTENSIONS = frozenset(
    {".exe", ".dll", ".bat", ".cmd", ".com", ".scr", ".js", ".vbs", ".ps1", ".sh", ".msi",
     ".jar", ".html", ".htm", ".svg", ".xhtml", ".php", ".hta"}
)  # fmt: skip
# Types the sniffer names so that it can refuse them: no kind may accept them (a file of
# one named without an extension would pass, and a download would hand out text/html).
NEVER_ACCEPTED = frozenset({"text/html", "application/x-msdownload", "application/x-executable"})
_HTML = re.compile(rb"^\s*(<!doctype html|<html|<head|<body|<script|<iframe|<svg|<\?xml)", re.I)


def sniff(head: bytes) -> str:
    """The content type of a file whose first bytes are ``head`` (up to ``SNIFF_BYTES``)."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"MZ"):
        return "application/x-msdownload"
    if head.startswith(b"\x7fELF"):
        return "application/x-executable"
    if head.startswith(b"PK\x03\x04"):
        if b"word/" in head:
            return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        if b"xl/" in head:
            return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return "application/zip"
    text = head.lstrip(b"\xef\xbb\xbf")
    if _HTML.match(text) or b"<script" in text.lower():
        return "text/html"
    if b"\x00" not in text and _is_utf8_prefix(text):
        return "text/plain"
    return OCTET_STREAM


def _is_utf8_prefix(data: bytes) -> bool:
    """UTF-8 text, allowing a multi-byte character cut at the end of the sniffed head."""
    for cut in range(4):
        try:
            (data[: len(data) - cut] if cut else data).decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def extension_of(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


def refusal(sniffed: str, declared: str | None, filename: str, allowed: list[str]) -> str | None:
    """Why a file is refused (for the 415's detail), or ``None`` if it is accepted."""
    if sniffed in NEVER_ACCEPTED:  # whatever a kind written before this rule allows
        return f"the file's content is {sniffed}, which is never accepted"
    if sniffed not in allowed:
        return f"the file's content is {sniffed}; this kind accepts {', '.join(allowed)}"
    extension = extension_of(filename)
    if extension in DANGEROUS_EXTENSIONS:
        return f"files named *{extension} are not accepted"
    csv_as_text = sniffed == "text/plain" and extension in EXTENSIONS["text/csv"]
    if extension and extension not in EXTENSIONS.get(sniffed, ()) and not csv_as_text:
        return f"the name ends in {extension} but the content is {sniffed}"
    media = (declared or "").split(";", 1)[0].strip().lower()
    text_as_csv = sniffed == "text/plain" and media == "text/csv"
    if media and media not in (OCTET_STREAM, sniffed) and not text_as_csv:
        return f"declared as {media} but the content is {sniffed}"
    return None


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the RFC 5987 UTF-8 name.

    The fallback is what clients without RFC 5987 save under (``curl -OJ``): a name
    written only in other scripts keeps its extension behind ``file``, never becoming
    a bare ``.pdf``, a hidden file."""
    ascii_name = filename.encode("ascii", "ignore").decode().strip(" ")
    ascii_name = re.sub(r'["\\;]', "_", ascii_name)
    if not ascii_name or ascii_name.startswith("."):
        ascii_name = "file" + ascii_name
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
