"""``safe_filename``: a client's file name, fit to store (PostgreSQL text) and to show."""

from __future__ import annotations

import pytest

from crm2_core.api import safe_filename, unstorable_text


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\a\\scan.pdf", "scan.pdf"),
        ("bank\x00.csv", "bank_.csv"),
        ("a\x01\x02\x7fb.txt", "a_b.txt"),
        ("bad\u0085name\u009b.pdf", "bad_name_.pdf"),  # C1 controls
        ("x\u202egpj.exe", "x_gpj.exe"),  # the bidi override that shows it as "exe.jpg"
        ("a\u2028b\u2029c.txt", "a_b_c.txt"),  # line and paragraph separators
        ("lone\ud800.txt", "lone_.txt"),  # unstorable in PostgreSQL text
        ("\ufeffbom.txt", "_bom.txt"),
        ("zwnj\u200cstays\u200d.txt", "zwnj\u200cstays\u200d.txt"),  # scripts need the joiners
        ("Cafe\u0301.pdf", "Café.pdf"),  # NFC
        (" .hidden. ", "hidden"),
    ],
)
def test_a_name_loses_what_hides_reorders_or_breaks_it(sent: str, kept: str) -> None:
    assert safe_filename(sent) == kept
    assert unstorable_text(safe_filename(sent)) is None


def test_nothing_left_gives_the_fallback() -> None:
    assert safe_filename(None) == "file"
    assert safe_filename("../..", fallback="") == ""
    assert safe_filename("\x00\u202e") == "_"


def test_a_long_name_keeps_its_extension_within_255_characters() -> None:
    name = safe_filename("x" * 400 + ".PDF")
    assert len(name) == 255 and name.endswith(".PDF")
