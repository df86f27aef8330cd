"""Case folding in SQL that agrees on both databases: ``folded(expr)``.

PostgreSQL's ``lower()`` folds every letter its locale knows (``É`` → ``é``); SQLite's
``lower()`` and ``LIKE`` fold ASCII only, so a search for ``élise`` never found
``Élise`` there. ``folded`` is ``lower(x)`` on PostgreSQL (the SQL, and so any index on
``lower(column)``, unchanged) and ``crm2_fold(x)`` on SQLite: Python's ``str.casefold``,
registered on every connection the core's engine opens (``register_sqlite_functions``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

SQLITE_FOLD = "crm2_fold"


def _casefold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Give a new SQLite connection the functions ``folded`` compiles to."""
    dbapi_connection.create_function(SQLITE_FOLD, 1, _casefold, deterministic=True)


class folded(FunctionElement[str]):
    """``expr`` case-folded, on either database (see the module's docstring)."""

    type = String()
    name = "folded"
    inherit_cache = True


class folded_pattern(FunctionElement[str]):
    """A LIKE pattern already lowered in Python, folded again where ``folded`` is
    Python's casefold (SQLite), so both sides of the LIKE fold alike; as is elsewhere."""

    type = String()
    name = "folded_pattern"
    inherit_cache = True


@compiles(folded)
def _folded_default(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "sqlite")
def _folded_sqlite(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_FOLD}({compiler.process(element.clauses, **kw)})"


@compiles(folded_pattern)
def _pattern_default(element: folded_pattern, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(folded_pattern, "sqlite")
def _pattern_sqlite(element: folded_pattern, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_FOLD}({compiler.process(element.clauses, **kw)})"
