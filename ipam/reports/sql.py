"""Statements the reports share: records as they were at an instant, streamed in chunks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..addresses import from_bytes
from ..models import CustomerRevision, SiteRevision, SublesseeRevision
from .base import STREAM_CHUNK


def stream(session: Session, statement: Select) -> Iterator:
    """Rows of `statement` fetched a chunk at a time (a server-side cursor on PostgreSQL)."""
    result = session.execute(statement.execution_options(yield_per=STREAM_CHUNK))
    yield from result


def _revision_at(model, key, ref, at: datetime):
    latest = (
        select(model.snapshot)
        .where(key == ref, model.recorded_at <= at)
        .order_by(model.recorded_at.desc(), model.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    first = (
        select(model.snapshot)
        .where(key == ref)
        .order_by(model.recorded_at, model.id)
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(latest, first).label("snapshot")


def customer_at(ref, at: datetime):
    """The customer's registration data in force at `at` (before its first revision: that one)."""
    return _revision_at(CustomerRevision, CustomerRevision.customer_id, ref, at)


def sublessee_at(ref, at: datetime):
    return _revision_at(SublesseeRevision, SublesseeRevision.sublessee_id, ref, at)


def site_at(ref, at: datetime):
    return _revision_at(SiteRevision, SiteRevision.site_id, ref, at)


def _text(family: int, value: bytes) -> str:
    if family == 4:
        return socket.inet_ntoa(value[-4:])
    return socket.inet_ntop(socket.AF_INET6, value)


def span(family: int, first: bytes, last: bytes, prefixlen: int) -> tuple[str, str, int, str]:
    """(first address, last address, how many, prefix) of a stored block."""
    lo, hi = _text(family, first), _text(family, last)
    prefix = lo if prefixlen == (32 if family == 4 else 128) else f"{lo}/{prefixlen}"
    return lo, hi, from_bytes(last) - from_bytes(first) + 1, prefix
