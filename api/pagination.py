"""Keyset pagination: the one way every list of the API pages, and its one error.

A list is ordered by a few columns in one direction, the last of them unique (newest
first is `created_at desc, id desc`; some lists are ordered by id alone). A caller
passes the id of the last item of the page they hold as `starting_after`; the list
looks that row up (only among the rows the caller may see, so another party's item
is as unknown as a missing one) and continues strictly after its values. Following
`next_cursor` thus gives every item once even when new ones arrive meanwhile.

A cursor the list cannot find is refused alike everywhere: 400 `cursor_invalid` on
`starting_after`. We key pages by the row rather than by a cursor beyond it because
ids are what callers hold and log; an id that names nothing cannot say where to go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlmodel import Session
from sqlmodel.sql.expression import SelectOfScalar

from api.errors import InvalidRequest

Item = TypeVar("Item")
Query = TypeVar("Query", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Keyset:
    """The columns a list is ordered by, all in one direction; the last one is unique."""

    columns: tuple[Any, ...]  # model attributes, e.g. (Review.created_at, Review.order_id)
    descending: bool = True

    def ordered(self, query: Query, cursor: object | None) -> Query:
        """`query` in this order, starting strictly after the `cursor` row (if any)."""
        if cursor is not None:
            query = query.where(self._after(cursor))
        return query.order_by(*(c.desc() if self.descending else c.asc() for c in self.columns))

    def _after(self, cursor: object) -> ColumnElement[bool]:
        # (a, b) after (x, y) in descending order: a < x, or a = x and b < y.
        values = [getattr(cursor, column.key) for column in self.columns]
        terms = []
        for i, column in enumerate(self.columns):
            ties = [c == v for c, v in zip(self.columns[:i], values[:i], strict=True)]
            beyond = column < values[i] if self.descending else column > values[i]
            terms.append(and_(*ties, beyond))
        return or_(*terms)


@dataclass(frozen=True)
class Page(Generic[Item]):
    """At most `limit` rows of a list, and whether any follow them."""

    items: Sequence[Item]
    has_more: bool

    def next_cursor(self, key: Callable[[Item], str]) -> str | None:
        """The `starting_after` of the next page: the last item's id, if one follows."""
        return key(self.items[-1]) if self.has_more else None


@overload
def fetch_page(session: Session, query: SelectOfScalar[Item], limit: int) -> Page[Item]: ...
@overload
def fetch_page(session: Session, query: Select[*tuple[Any, ...]], limit: int) -> Page[Any]: ...
def fetch_page(session: Session, query: Any, limit: int) -> Page[Any]:
    """Read one row more than the page holds: it tells whether another page follows."""
    rows = session.exec(query.limit(limit + 1)).all()
    return Page(items=rows[:limit], has_more=len(rows) > limit)


def bad_cursor(starting_after: str) -> InvalidRequest:
    """The answer to a `starting_after` that names no item of the list."""
    return InvalidRequest(
        "cursor_invalid", f"{starting_after} is not an item of this list", "starting_after"
    )
