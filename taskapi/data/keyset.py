"""Keyset pages, for the task list, the trash and the change feed: the rows after
a position in (sort value, id) order, and where the next page starts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Integer, RowMapping, Select, bindparam, tuple_

from .database import statement_connection


@dataclass(frozen=True)
class Position:
    """Where a page ended: the segment, and the last row's sort value and id."""

    segment: int
    value: object
    id: int


@dataclass(frozen=True)
class Page:
    rows: list[RowMapping]
    next_position: Position | None  # None: this was the last page
    total: int  # rows matching the query, on every page


@dataclass(frozen=True, eq=False)  # columns compare into SQL, not into a bool
class Keyset:
    """An order rows are paged in: by ``column``, then by ``id_column``.

    If ``column`` is ``nullable``, rows without a value come last in both
    directions, as a second segment ordered by id alone.
    """

    column: ColumnElement
    id_column: ColumnElement
    descending: bool = False
    nullable: bool = False

    @property
    def segments(self) -> int:
        return 2 if self.nullable else 1

    def paged(self, statement: Select, segment: int = 0, resume: bool = True) -> Select:
        """``statement``'s rows of ``segment`` in this order, up to the bound ``limit``;
        with ``resume``, only those after the bound ``after_value`` and ``after_id``."""
        column, id_column = self.column, self.id_column
        after_id = bindparam("after_id", type_=id_column.type)
        if segment == 1:  # the rows whose sort value is null, by id alone
            statement = statement.where(column.is_(None))
            order, position, after = (id_column,), id_column, after_id
        else:
            if self.nullable:
                statement = statement.where(column.is_not(None))
            order, position = (column, id_column), tuple_(column, id_column)
            after = tuple_(bindparam("after_value", type_=column.type), after_id)
        if resume:
            statement = statement.where(position < after if self.descending else position > after)
        if self.descending:
            order = tuple(part.desc() for part in order)
        return statement.order_by(*order).limit(bindparam("limit", type_=Integer))

    def position_of(self, row: RowMapping) -> Position:
        value = row[self.column.name]
        segment = 1 if value is None and self.nullable else 0
        return Position(segment, value, row[self.id_column.name])

    def next_position(self, rows: list[RowMapping], limit: int) -> Position | None:
        """Where the page after the first ``limit`` of ``rows`` starts; None if there is none."""
        return self.position_of(rows[limit - 1]) if len(rows) > limit else None


def after_parameters(position: Position) -> dict:
    """The bound values ``Keyset.paged`` resumes after."""
    return {"after_value": position.value, "after_id": position.id}


def fetch_page(
    order: Keyset,
    page_statement: Callable[[int, bool], Select],
    count_statement: Select,
    parameters: dict,
    limit: int,
    after: Position | None,
) -> Page:
    """Up to ``limit`` rows after ``after``, where the next page starts, and the total.

    ``page_statement(segment, resume)`` is ``order.paged`` applied to a query
    whose rows carry the total (a scalar subquery, ``count_statement``'s), so
    a page costs one round trip; only an empty page after a cursor needs a second.
    """
    with statement_connection() as database:
        segment = after.segment if after else 0
        rows: list = []
        while segment < order.segments and len(rows) <= limit:
            resume = after is not None and after.segment == segment
            values = parameters | {"limit": limit + 1 - len(rows)}
            if resume:
                values |= after_parameters(after)
            rows += database.execute(page_statement(segment, resume), values).mappings().all()
            segment += 1
        if rows:
            total = rows[0]["total"]
        elif after:  # past the end: the count is still the query's
            total = database.execute(count_statement, parameters).scalar()
        else:
            total = 0
        return Page(rows[:limit], order.next_position(rows, limit), total)
