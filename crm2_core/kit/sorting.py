"""Sort orders declared once: the query parameter's allowed values come from the same table."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import Query

from crm2_core.db.pagination import OrderKey, sort_order


class Sorts:
    """``Sorts({"name": Client.name, …}, id_column=Client.id, default="-updated_at")``.

    ``keys(sort)`` is the keyset ordering (the id last); ``dependency`` is a FastAPI
    dependency reading ``?sort=`` whose OpenAPI enum is exactly the declared names,
    each ascending or with ``-`` for descending. A nullable column needs nothing more:
    ``paginate`` sorts its NULLs last ascending and first descending, on every database.
    """

    def __init__(self, columns: Mapping[str, Any], *, id_column: Any, default: str) -> None:
        self.columns = dict(columns)
        self.id_column = id_column
        self.values = tuple(v for name in self.columns for v in (name, f"-{name}"))
        if default not in self.values:
            raise ValueError(f"default sort {default!r} is not one of {self.values}")
        self.default = default
        # ``?sort=``'s type: exactly the declared names (a 422 otherwise), described once.
        self.annotation: Any = Annotated[
            Literal[self.values],
            Query(description="a field, '-' for descending"),
        ]
        self.dependency = self._dependency()
        # The same key objects for every page of a sort: ``paginate`` builds each
        # ordering's SQL once and finds it again by them.
        self._keys = {v: tuple(sort_order(v, self.columns, self.id_column)) for v in self.values}

    def keys(self, sort: str | None = None) -> list[OrderKey]:
        sort = sort or self.default
        keys = self._keys.get(sort)
        return list(keys) if keys is not None else sort_order(sort, self.columns, self.id_column)

    def _dependency(self) -> Any:
        async def sort_parameter(sort: str) -> str:
            return sort

        parameter = inspect.Parameter(
            "sort", inspect.Parameter.KEYWORD_ONLY, default=self.default, annotation=self.annotation
        )
        sort_parameter.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [parameter], return_annotation=str
        )
        return sort_parameter
