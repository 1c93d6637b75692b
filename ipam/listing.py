"""What every list shares: whose rows the caller may see, and one page of them.

List functions live beside their records (customers.list_customers,
allocation.list_allocations, ...): each takes a filter (a dataclass of its
module), the caller's Scope and a Window, and answers (rows, total). The web,
the API and the CLI only parse arguments into those and render the rows, so
scoping and filtering are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Scope:
    """Whose records: None for the provider's roles (all), else one customer's own."""

    customer_id: int | None = None

    def restrict(self, statement: Select, column) -> Select:
        """`statement` limited to rows whose `column` is the scope's customer."""
        return (
            statement if self.customer_id is None else statement.where(column == self.customer_id)
        )


EVERYONE = Scope()


@dataclass(frozen=True)
class Window:
    """A page: at most `limit` rows (None: all) after skipping `offset`; `count=False`
    when nobody shows the total (counting a million rows costs more than the page)."""

    limit: int | None = None
    offset: int = 0
    count: bool = True


ALL = Window()


def fetch(session: Session, statement: Select, window: Window = ALL) -> tuple[list, int | None]:
    """The window's rows of `statement` and how many rows there are in all (None when the
    window says not to count)."""
    if window.limit is None and not window.offset:
        rows = list(session.scalars(statement))
        return rows, len(rows)
    rows = list(session.scalars(statement.limit(window.limit).offset(window.offset)))
    if not window.count:
        return rows, None
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    return rows, total
