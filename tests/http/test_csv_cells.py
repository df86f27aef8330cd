"""The kit's CSV cells: each kind of value's text, formula guards, and the fast path's agreement."""

from __future__ import annotations

import enum
import random
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from crm2_core.api import cell, render, safe_cell


class Colour(str, enum.Enum):  # noqa: UP042 - the mixin whose str() is not its value
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


MOMENT = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("", ""),
        ("plain", "plain"),
        ("=1+1", "'=1+1"),
        ("@x", "'@x"),
        ("+cmd", "'+cmd"),
        ("-x", "'-x"),
        ("\tTab", "'\tTab"),
        ("\rx", "'\rx"),
        ("-3", "-3"),
        ("-3.25", "-3.25"),
        # only a plain number passes: a spreadsheet calculates anything else
        ("-1-1", "'-1-1"),
        ("+1", "'+1"),
        ("-1/2", "'-1/2"),
        ("-(1)", "'-(1)"),
        ("-1.", "'-1."),
        ("+39 06 1", "'+39 06 1"),
        ("-", "'-"),
        (" =space", " =space"),
        # one more apostrophe: the import takes one off, and gives back the value itself
        ("'=already", "''=already"),
        ("'-3", "'-3"),
        ("'plain", "'plain"),
        ("Zürich ☂", "Zürich ☂"),
        (0, "0"),
        (-3, "-3"),
        (2**63, "9223372036854775808"),
        (True, "true"),
        (False, "false"),
        (ID, "00000000-0000-4000-8000-000000000001"),
        (date(2026, 3, 1), "2026-03-01"),
        (MOMENT, "2026-03-01T12:30:45.123456+00:00"),
        (Decimal("-0.05"), "-0.05"),
        (Decimal("1E+2"), "100"),
        (["a", "=b"], "a;=b"),
        (("=a", "b"), "'=a;b"),
        (Colour.RED, str(Colour.RED)),  # a str subclass: str() decides, as before
        (Level.HIGH, str(Level.HIGH)),
        (1.5, "1.5"),
    ],
)
def test_each_value_has_one_text(value: Any, text: str) -> None:
    assert cell(value) == text


def test_the_fast_path_writes_what_the_general_path_writes() -> None:
    """Strings, ints and UUIDs skip ``safe_cell``'s checks only where they cannot change."""
    rng = random.Random(5)
    alphabet = "=+-@\t\r\n '\",;aZ09.()/ü"
    texts = ["".join(rng.choices(alphabet, k=rng.randrange(0, 6))) for _ in range(5000)]
    ints = [rng.randrange(-(2**70), 2**70) >> rng.randrange(70) for _ in range(2000)]
    for value in [*texts, *ints, *(uuid.uuid4() for _ in range(200))]:
        assert cell(value) == safe_cell(str(value))


def test_render_quotes_what_csv_must_quote() -> None:
    rows = [["a,b", 'say "hi"', "line1\nline2", "\rx", None, -1, "=1"]]
    assert render(rows) == '"a,b","say ""hi""","line1\nline2","\'\rx",,-1,\'=1\r\n'


@pytest.mark.parametrize(
    "value", ["-1-1", "+39 06 1", "-", "=1+1", "-1,5", "'=already", "''@x", "'-3", "'", "'+39 06 1"]
)
def test_a_guarded_cell_imports_as_it_was(value: str) -> None:
    from crm2_core.kit.csv import unguard

    assert unguard(safe_cell(value)) == value


def test_every_cell_imports_as_it_was() -> None:
    """An export imports again unchanged: a value with its own leading apostrophe lost it."""
    from crm2_core.kit.csv import unguard

    rng = random.Random(7)
    alphabet = "'=+-@\t\r 09.a"
    for _ in range(5000):
        value = "".join(rng.choices(alphabet, k=rng.randrange(0, 6)))
        assert unguard(cell(value)) == value, value
