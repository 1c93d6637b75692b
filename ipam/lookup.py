"""Indexed questions about stored blocks: what covers a block, what lies inside it.

CIDR blocks either nest or are disjoint, so the blocks overlapping B are the
ones covering B (their `first` is B.first masked to one of at most 33 or 129
lengths: equality look-ups) and the ones inside B (a range of `first`).
Both use the (family, first) index; nothing scans a pool in Python.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select

from .addresses import Block, to_bytes
from .errors import Phrase, ValidationError


def covering(model, block: Block):
    """SQL condition: the row's block contains `block` (or is it)."""
    firsts = sorted({to_bytes(first) for first, _ in block.covering_firsts()})
    return and_(
        model.family == block.family,
        model.first.in_(firsts),
        model.last >= to_bytes(block.last),
        model.prefixlen <= block.prefixlen,
    )


def inside(model, block: Block):
    """SQL condition: the row's block lies inside `block` (or is it)."""
    return and_(
        model.family == block.family,
        model.first >= to_bytes(block.first),
        model.first <= to_bytes(block.last),
        model.prefixlen >= block.prefixlen,
    )


def overlapping(model, block: Block):
    return or_(covering(model, block), inside(model, block))


def current_at(model, at: datetime):
    """SQL condition: the interval [valid_from, valid_to) contains `at`."""
    return and_(model.valid_from <= at, or_(model.valid_to.is_(None), model.valid_to > at))


def during(model, start: datetime, end: datetime | None):
    """SQL condition: the row's interval meets [start, end) (end None: open)."""
    cond = or_(model.valid_to.is_(None), model.valid_to > start)
    if end is not None:
        cond = and_(cond, model.valid_from < end)
    return cond


def one_match(session, stmt, ref, field: str, what: str):
    """Return the single row `stmt` finds for a name given by a person, or None.

    Two or more matches are refused: a name is no key, and guessing would act
    on the wrong customer.
    """
    rows = session.execute(stmt.limit(2)).scalars().all()
    if len(rows) > 1:
        raise ValidationError(
            "several {what}s match {ref!r}; give the id instead", field, what=Phrase(what), ref=ref
        )
    return rows[0] if rows else None


def as_id(ref) -> int | None:
    """The row id a reference gives (an int or a string of digits), else None."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref
    if isinstance(ref, str) and ref.strip().isdigit():
        return int(ref)
    return None


def find_by_ref(session, model, ref, field: str, what: str, by_name):
    """Find a row by id (int or digits) or by `by_name(text)`, a condition; None if absent."""
    if isinstance(ref, model):
        return ref
    if as_id(ref) is not None:
        return session.get(model, as_id(ref))
    if isinstance(ref, str) and ref.strip():
        return one_match(session, select(model).where(by_name(ref.strip())), ref, field, what)
    return None
