"""One repository base: get-visible-or-404, insert, versioned update and delete, keyset lists.

A plugin's repository module makes one ``Repository`` per entity and adds only
its domain queries::

    clients = Repository(Client, ClientNotFound, owner=Client.owner_id, sorts=CLIENT_SORTS)

Every read takes a ``Visibility`` and applies it in SQL; another owner's id is
the same 404 as a missing one.
"""

from __future__ import annotations

import uuid
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Exists, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.db.pagination import OrderKey, PageParams, Shaped, paginate
from crm2_core.db.types import utcnow
from crm2_core.db.versioned import delete_versioned, update_versioned
from crm2_core.errors import NotFound, PreconditionFailed
from crm2_core.http.etag import check_version
from crm2_core.kit.filters import Filtered, eq
from crm2_core.kit.sorting import Sorts
from crm2_core.kit.visibility import Visibility

M = TypeVar("M")
Summary = Callable[[Any], Mapping[str, Any]]


def _row_class(name: str, columns: Sequence[Any]) -> Callable[[Sequence[Any]], Any] | None:
    """A named tuple class of the columns (``None`` when a column's key is no field name)."""
    if not columns:
        return None
    try:
        row_class: Any = namedtuple(f"{name}Row", [str(c.key) for c in columns])  # type: ignore[misc]
    except ValueError:
        return None
    make: Callable[[Sequence[Any]], Any] = row_class._make
    return make


class Repository(Generic[M]):
    """The generic queries of one table with an ``id``, a ``version`` and (maybe) an owner.

    ``owner`` is the owner column the visibility applies to; ``join`` is for an
    entity visible through another (a contact through its client): ``(table, on)``.
    """

    def __init__(
        self,
        model: type[M],
        not_found: type[NotFound],
        *,
        owner: Any | None = None,
        join: tuple[Any, Any] | None = None,
        sorts: Sorts | None = None,
        noun: str | None = None,
    ) -> None:
        self.model = model
        self.not_found = not_found
        self.owner = owner
        self.join = join
        self.sorts = sorts
        self.noun = noun or model.__name__.lower()
        self.id_column: Any = getattr(model, "id")  # noqa: B009 - typed as Any on purpose
        table = getattr(model, "__table__", None)
        self._columns: tuple[Any, ...] = tuple(table.columns) if table is not None else ()
        self._plain_row = _row_class(model.__name__, self._columns)
        self._has_updated_at = hasattr(model, "updated_at")
        self._exists: dict[bool, Exists] = {}
        # ``SELECT`` of the entity (or of its columns), joined: built on first use, then
        # shared by every read (a statement is immutable: ``where`` makes a new one).
        self._bases: dict[bool, Select[Any]] = {}

    # -- reads -------------------------------------------------------------------------

    def visible(self, visibility: Visibility) -> Select[Any]:
        """``SELECT`` of the rows ``visibility`` may see."""
        return self._visible(visibility, columns=False)

    def visible_rows(self, visibility: Visibility) -> Select[Any]:
        """``visible``, selecting the table's columns as ``page_rows`` does (it then has
        nothing to swap: a list page's statement is built once instead of twice)."""
        return self._visible(visibility, columns=True)

    def _visible(self, visibility: Visibility, *, columns: bool) -> Select[Any]:
        stmt = self.base(columns=columns)
        if self.owner is not None:
            stmt = stmt.where(visibility.where(self.owner))
        return stmt

    def filtered(self, visibility: Visibility, *clauses: Any) -> Filtered:
        """``visible_rows(visibility)`` with every clause that is not ``None``, for
        ``page_rows``: given conditions (``eq``, ``at_least``, ``at_most``,
        ``contains_text``), the page's statement is built once per shape (which of them,
        on which columns) and the values are bound at execution.

        A subclass with its own ``visible_rows`` rule gets that rule's statement, built
        per call as before (its shape is not known here).
        """
        given = tuple(clause for clause in clauses if clause is not None)
        if type(self).visible_rows is not Repository.visible_rows:
            return Filtered(self.visible_rows(visibility), given, shared=False)
        if self.owner is not None and not visibility.unrestricted:
            given = (eq(self.owner, visibility.owner_id), *given)
        return Filtered(self.base(columns=True), given)

    def base(self, *, columns: bool = False) -> Select[Any]:
        """``SELECT`` of every row (of the entity, or with ``columns`` of the table's
        columns), joined: for a subclass whose ``visible`` applies its own rule."""
        stmt = self._bases.get(columns)
        if stmt is None:
            stmt = select(self.model)
            if columns:
                stmt = stmt.with_only_columns(*self._plain_columns())
            if self.join is not None:
                stmt = stmt.join(*self.join)
            self._bases[columns] = stmt
        return stmt

    def _plain_columns(self) -> tuple[Any, ...]:
        if not self._columns:
            raise TypeError(f"{self.noun}: plain rows need a table model")
        return self._columns

    def visible_exists(
        self, visibility: Visibility, id: uuid.UUID
    ) -> tuple[Exists, dict[str, Any]]:
        """``EXISTS`` (row ``id`` is visible) to ask inside another query, and the
        parameters to run that query with.

        The clause is built once per kind of visibility (all rows, one owner's) with
        bound parameters, so a query that embeds it can be built once too and reuse
        SQLAlchemy's cached compiled form instead of rebuilding both per request.
        """
        restricted = self.owner is not None and not visibility.unrestricted
        prefix = f"{self.noun}_visible"
        clause = self._exists.get(restricted)
        if clause is None:
            stmt = self.visible(Visibility.system())
            stmt = stmt.where(self.id_column == bindparam(f"{prefix}_id"))
            owner: Any = self.owner
            if restricted:
                stmt = stmt.where(owner == bindparam(f"{prefix}_owner"))
            clause = self._exists[restricted] = stmt.exists()
        params: dict[str, Any] = {f"{prefix}_id": id}
        if restricted:
            params[f"{prefix}_owner"] = visibility.owner_id
        return clause, params

    async def get(self, session: AsyncSession, visibility: Visibility, id: uuid.UUID) -> M | None:
        stmt = (
            self.visible(visibility)
            .where(self.id_column == id)
            .execution_options(populate_existing=True)
        )
        row: M | None = (await session.execute(stmt)).scalar_one_or_none()
        return row

    async def get_or_404(self, session: AsyncSession, visibility: Visibility, id: uuid.UUID) -> M:
        row = await self.get(session, visibility, id)
        if row is None:
            raise self.not_found(f"no {self.noun} {id}")
        return row

    def _keys(self, sort: str | None, keys: list[OrderKey] | None) -> list[OrderKey]:
        if keys is not None:
            return keys
        if self.sorts is None:
            raise TypeError(f"{self.noun}: give keys or declare sorts")
        return self.sorts.keys(sort)

    async def page(
        self,
        session: AsyncSession,
        stmt: Select[Any],
        page: PageParams,
        *,
        sort: str | None = None,
        keys: list[OrderKey] | None = None,
    ) -> tuple[list[M], str | None]:
        """One keyset page of ``stmt`` in the declared sort (or explicit ``keys``)."""
        return await paginate(session, stmt, self._keys(sort, keys), page)

    async def page_rows(
        self,
        session: AsyncSession,
        stmt: Select[Any] | Filtered,
        page: PageParams,
        *,
        sort: str | None = None,
        keys: list[OrderKey] | None = None,
    ) -> tuple[list[Any], str | None]:
        """``page``, the rows being the table's columns as plain named tuples.

        A row reads like the entity (``row.title``, ``ResponseModel.model_validate(row)``)
        but is no ORM object: no identity map, no instrumented instance per row, which
        is most of the cost of loading a list page. For pages that are only shown. A
        named tuple rather than SQLAlchemy's ``Row``: a response reads every field of
        fifty rows, and a ``Row`` answers each attribute in Python (``__getattr__``),
        a named tuple in C, ten times faster.
        """
        query = stmt.query() if isinstance(stmt, Filtered) else stmt
        if not isinstance(query, Shaped):
            query = self._with_plain_columns(query)
        return await paginate(
            session, query, self._keys(sort, keys), page, scalars=False, row=self._plain_row
        )

    def _with_plain_columns(self, stmt: Select[Any]) -> Select[Any]:
        columns = self._plain_columns()
        selected = tuple(getattr(stmt, "_raw_columns", ()))
        same = len(selected) == len(columns)
        if not (same and all(a is b for a, b in zip(selected, columns, strict=True))):
            stmt = stmt.with_only_columns(*columns)
        return stmt

    # -- writes ------------------------------------------------------------------------

    async def add(self, session: AsyncSession, row: M) -> M:
        """Insert and flush, so the id and defaults are there."""
        session.add(row)
        await session.flush()
        return row

    async def update(
        self,
        session: AsyncSession,
        row: M,
        values: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        only_changed: bool = True,
    ) -> dict[str, Any]:
        """Write ``values`` with one version bump (412 if someone else wrote first).

        Returns what changed; with ``only_changed`` (the default) nothing is written when
        nothing changed, without it the row is written (and its version bumped) anyway.
        ``row`` is refreshed.
        """
        changed = dict(values)
        if only_changed:
            changed = {k: v for k, v in changed.items() if getattr(row, k) != v}
            if not changed:
                return {}
        written = dict(changed)
        if self._has_updated_at and "updated_at" not in written:
            written["updated_at"] = utcnow()
        version = getattr(row, "version") if expected_version is None else expected_version  # noqa: B009
        row_id = getattr(row, "id")  # noqa: B009
        await update_versioned(session, self.model, self.id_column == row_id, version, written)
        await session.refresh(row)
        return changed

    async def delete(
        self, session: AsyncSession, id: uuid.UUID, version: int | None = None
    ) -> bool:
        """Delete row ``id`` (only while at ``version``, when one is given): whether it went.

        The version is a condition of the ``DELETE`` itself, so a write committing between
        the caller's read and this delete leaves the row in place on both databases.
        """
        return await delete_versioned(session, self.model, self.id_column == id, version)

    async def delete_if_match(self, session: AsyncSession, row: M, if_match: str | None) -> None:
        """Delete ``row``, read just before; an ``If-Match`` (optional) must name its version.

        Sent, another version is 412 and nothing is deleted, also when an edit commits after
        the read (``DELETE … WHERE version = :v``). A concurrent delete that went first is
        the entity's 404.
        """
        row_id = getattr(row, "id")  # noqa: B009
        expected = None
        if if_match is not None:
            expected = check_version(if_match, getattr(row, "version"))  # noqa: B009
        if await self.delete(session, row_id, expected):
            return
        if expected is not None and await self.get(session, Visibility.system(), row_id):
            raise PreconditionFailed(
                f"the {self.noun} changed while you were deleting it; read it again and retry"
            )
        raise self.not_found(f"no {self.noun} {row_id}")

    # -- crm2_resolve_entity -----------------------------------------------------------

    def resolver(self, summary: Summary) -> Callable[[AsyncSession, Visibility, uuid.UUID], Any]:
        """An ``EntityResolver`` entry: the visible row as ``summary(row)``, else ``None``."""

        async def resolve(
            session: AsyncSession, visibility: Visibility, id: uuid.UUID
        ) -> Mapping[str, Any] | None:
            row = await self.get(session, visibility, id)
            return None if row is None else summary(row)

        return resolve
