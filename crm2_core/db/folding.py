"""Case folding in SQL that agrees on both databases: ``folded(expr)``.

PostgreSQL's ``lower()`` folds every letter its locale knows (``É`` → ``é``); SQLite's
``lower()`` and ``LIKE`` fold ASCII only, so a search for ``élise`` never found
``Élise`` there. One rule, :func:`fold_text`, on both:

- each letter to its one lower-case letter, as PostgreSQL's ``lower()`` does (``ß``
  stays ``ß``: Python's ``casefold`` made it ``ss`` on SQLite only);
- the Greek final sigma ``ς`` (U+03C2) as the plain small sigma (U+03C3): Python's
  ``lower()`` writes a final ``Σ`` as ``ς`` ("ΚΟΣΜΟΣ" → "κοσμος"), PostgreSQL's as
  the plain one, and a user may type either.

``folded`` is ``translate(lower(x), FINAL_SIGMA, SIGMA)`` on PostgreSQL and ``crm2_fold(x)`` on
SQLite (:func:`fold_text`, registered on every connection the core's engine opens:
``register_sqlite_functions``). Text folded in Python to compare with either (a LIKE
pattern, a stored search column) goes through :func:`fold_text` too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

SQLITE_FOLD = "crm2_fold"
FINAL_SIGMA, SIGMA = "\u03c2", "\u03c3"  # final and plain small sigma
# The one letter whose lower case Python writes as two (İ → i + U+0307); PostgreSQL: i.
_ONE_LETTER = str.maketrans({"\u0130": "i"})


def fold_text(text: str) -> str:
    """``text`` folded as ``folded`` folds it in SQL, on either database."""
    return text.translate(_ONE_LETTER).lower().replace(FINAL_SIGMA, SIGMA)


def _fold(value: Any) -> Any:
    return fold_text(value) if isinstance(value, str) else value


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Give a new SQLite connection the functions ``folded`` compiles to."""
    dbapi_connection.create_function(SQLITE_FOLD, 1, _fold, deterministic=True)


class folded(FunctionElement[str]):
    """``expr`` case-folded, on either database (see the module's docstring)."""

    type = String()
    name = "folded"
    inherit_cache = True


class folded_pattern(FunctionElement[str]):
    """A LIKE pattern already folded in Python (:func:`fold_text`), folded again in SQL
    where ``folded`` runs Python (SQLite), so both sides of the LIKE fold alike; as is
    elsewhere."""

    type = String()
    name = "folded_pattern"
    inherit_cache = True


@compiles(folded)
def _folded_default(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    # literal letters, not binds: the same SQL text whatever the arguments
    lowered = f"lower({compiler.process(element.clauses, **kw)})"
    return f"translate({lowered}, '{FINAL_SIGMA}', '{SIGMA}')"


@compiles(folded, "sqlite")
def _folded_sqlite(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_FOLD}({compiler.process(element.clauses, **kw)})"


@compiles(folded_pattern)
def _pattern_default(element: folded_pattern, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(folded_pattern, "sqlite")
def _pattern_sqlite(element: folded_pattern, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_FOLD}({compiler.process(element.clauses, **kw)})"
