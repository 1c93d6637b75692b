"""Who held address A at instant T: pool, allocation, customer, sublease, sublessee.

Customer and sublessee data come from their revisions in force at T, so a
later change of contacts never changes an old answer. One indexed query
answers the common case (the covering allocations are found by equality on
their masked `first`, see lookup.py); unallocated addresses take two more.

The module imports neither SQLAlchemy nor the models: `ipam whois` asks through the
database driver itself (Direct), without the rest of the product loaded.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from .addresses import Block, parse_address, to_bytes
from .plainjson import jsonable
from .privacy import masked
from .validation import instant

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass
class Attribution:
    """The answer to "who held `address` at `at`"."""

    address: str
    at: datetime
    status: str  # allocated | subleased | quarantined | free | unmanaged
    pool: dict | None = None
    allocation: dict | None = None
    customer: dict | None = None
    sublease: dict | None = None
    sublessee: dict | None = None
    quarantine: dict | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return jsonable(asdict(self))

    def masked(self) -> Attribution:
        """Return a copy with ID numbers and phone numbers masked (invariant 9)."""
        out = copy.copy(self)
        for name in ("customer", "sublessee"):
            setattr(out, name, masked(getattr(self, name)))
        return out


def _revision_sql(table: str, key: str, ref: str) -> str:
    # The version in force at :t; before the first one, the first one.
    return f"""COALESCE(
        (SELECT r.snapshot FROM {table} r WHERE r.{key} = {ref} AND r.recorded_at <= :t
         ORDER BY r.recorded_at DESC, r.id DESC LIMIT 1),
        (SELECT r.snapshot FROM {table} r WHERE r.{key} = {ref}
         ORDER BY r.recorded_at, r.id LIMIT 1))"""


def _masks(prefix: str, count: int) -> str:
    return ", ".join(f":{prefix}{i}" for i in range(count))


def _holder_sql(masks: int) -> str:
    return f"""
    SELECT a.id, a.first, a.prefixlen, a.purpose, a.valid_from, a.valid_to, a.end_reason,
           p.id, p.name, p.first, p.prefixlen,
           {_revision_sql("customer_revision", "customer_id", "a.customer_id")},
           s.id, s.first, s.prefixlen, s.valid_from, s.valid_to,
           {_revision_sql("sublessee_revision", "sublessee_id", "s.sublessee_id")}
    FROM allocation a
    JOIN pool p ON p.id = a.pool_id
    LEFT JOIN sublease s ON s.allocation_id = a.id AND s.first <= :a AND s.last >= :a
         AND s.valid_from <= :t AND (s.valid_to IS NULL OR s.valid_to > :t)
    WHERE a.family = :f AND a.first IN ({_masks("m", masks)}) AND a.last >= :a
      AND a.valid_from <= :t AND (a.valid_to IS NULL OR a.valid_to > :t)
    LIMIT 1"""


def _ids_sql(masks: int) -> str:
    # The holder's keys only: what abuse intake needs, without the revision look-ups.
    return f"""
    SELECT a.id, a.customer_id, s.id, s.sublessee_id
    FROM allocation a
    LEFT JOIN sublease s ON s.allocation_id = a.id AND s.first <= :a AND s.last >= :a
         AND s.valid_from <= :t AND (s.valid_to IS NULL OR s.valid_to > :t)
    WHERE a.family = :f AND a.first IN ({_masks("m", masks)}) AND a.last >= :a
      AND a.valid_from <= :t AND (a.valid_to IS NULL OR a.valid_to > :t)
    LIMIT 1"""


def _unheld_sql(masks: int, pool_masks: int) -> str:
    # The innermost pool, and a quarantine in force at :t if there is one.
    return f"""
    SELECT p.id, p.name, p.first, p.prefixlen,
           q.id, q.first, q.prefixlen, q.since, q.until, q.reason, q.allocation_id
    FROM pool p
    LEFT JOIN quarantine q ON q.family = :f AND q.first IN ({_masks("m", masks)}) AND q.last >= :a
         AND q.since <= :t AND (q.released_at IS NULL OR q.released_at > :t)
    WHERE p.family = :f AND p.first IN ({_masks("p", pool_masks)}) AND p.last >= :a
    ORDER BY p.prefixlen DESC
    LIMIT 1"""


def _positional(sql: str, style: str) -> tuple[str, tuple[str, ...]]:
    """Turn :name placeholders into the driver's own (? or %s), keeping their order."""
    names = tuple(re.findall(r"(?<![:\w]):(\w+)", sql))
    return re.sub(r"(?<![:\w]):\w+", "?" if style == "qmark" else "%s", sql), names


@lru_cache(maxsize=512)
def _driver_sql(kind: str, style: str, masks: int, pool_masks: int = 0):
    return _positional(_sql(kind, masks, pool_masks), style)


def _checked_sql(masks: int) -> str:
    # PostgreSQL, one round trip: the holder, and a fingerprint of the prefix lengths the
    # question was built with (holding_length is append-only; pools change seldom), so a
    # cached list of lengths is used only while it is still the whole list.
    fingerprint = """(SELECT coalesce(sum(power(2::numeric, prefixlen)), 0)
                       FROM holding_length WHERE family = :f),
                     (SELECT coalesce(sum(DISTINCT power(2::numeric, prefixlen)), 0)
                       FROM pool WHERE family = :f)"""
    return f"""SELECT {fingerprint}, h.* FROM (SELECT 1) AS one
    LEFT JOIN LATERAL ({_holder_sql(max(masks, 1))}) AS h ON true"""


def _sql(kind: str, masks: int, pool_masks: int) -> str:
    if kind == "holder":
        return _holder_sql(masks)
    if kind == "checked":
        return _checked_sql(masks)
    if kind == "ids":
        return _ids_sql(masks)
    return _unheld_sql(max(masks, 1), pool_masks)


# database URL -> {(table, family): prefix lengths}; see _Driver.cached
_LENGTHS: dict[str, dict] = {}


class Direct(NamedTuple):
    """A database driver's own connection (sqlite3 or psycopg) to ask through, in place of a
    session: what `ipam whois` opens so as not to load SQLAlchemy (web/cli/direct.py)."""

    connection: object
    sqlite: bool
    url: str


class _Driver:
    """Values as the driver stores them (SQLAlchemy's storage forms), and back.

    Why: attribution runs at tens of thousands a second for abuse batches and
    reports; going to the driver directly avoids most of the per-statement
    overhead. The schema's types (naive UTC, JSON text on SQLite) are honoured.
    """

    def __init__(self, session: Session | Direct, *, cached: bool = False):
        if not isinstance(session, Direct):
            conn = session.connection()
            session = Direct(
                conn.connection.driver_connection,
                conn.dialect.name == "sqlite",
                str(conn.engine.url),
            )
        self.direct = session
        self.sqlite = session.sqlite
        self.raw = session.connection
        self.style = "qmark" if self.sqlite else "format"
        # PostgreSQL single lookups use the lengths of earlier questions (checked by the
        # statement itself, see _checked_sql); batches read them afresh.
        self.cached = cached and not self.sqlite
        self._lengths: dict = _LENGTHS.setdefault(session.url, {}) if self.cached else {}

    def forget(self, family: int) -> None:
        for table in ("holding", "pool"):
            self._lengths.pop((table, family), None)

    def lengths(self, table: str, family: int) -> list[int]:
        """Prefix lengths that occur in `table` for the family, longest first.

        Only these masks can match, so the IN list holds one value per length
        in use (typically two or three) instead of 33 or 129.
        """
        key = (table, family)
        if key not in self._lengths:
            sql = (
                "SELECT prefixlen FROM holding_length WHERE family = {p}"
                if table == "holding"
                else "SELECT DISTINCT prefixlen FROM pool WHERE family = {p}"
            )
            cur = self.raw.cursor()
            try:
                cur.execute(sql.format(p="?" if self.sqlite else "%s"), [family])
                self._lengths[key] = sorted((r[0] for r in cur.fetchall()), reverse=True)
            finally:
                cur.close()
        return self._lengths[key]

    def when(self, value: datetime):
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else naive

    def instant(self, value):
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)

    def json(self, value):
        return json.loads(value) if isinstance(value, str | bytes) else value

    def fetch(self, kind: str, values: dict, masks: int, pool_masks: int = 0):
        sql, names = _driver_sql(kind, self.style, masks, pool_masks)
        cur = self.raw.cursor()
        try:
            cur.execute(sql, [values[n] for n in names])
            return cur.fetchone()
        finally:
            cur.close()


def _prefix(family: int, first: bytes, plen: int) -> str:
    first = bytes(first)
    if family == 4:
        text = ".".join(map(str, first[12:]))
        return text if plen == 32 else f"{text}/{plen}"
    return str(Block.of(family, first, plen))


def attribution(session: Session | Direct, address, at=None) -> Attribution:
    """Return who held `address` at instant `at` (default now), as they were then.

    A single address is expected (IPv4-mapped IPv6 is read as IPv4). Status is
    "subleased", "allocated", "quarantined", "free" (inside a pool, unheld) or
    "unmanaged" (in no pool). `session` may be a Direct driver connection.
    """
    drv = _Driver(session, cached=True)
    return _attribute_checked(drv, address, at) if drv.cached else _attribute(drv, address, at)


def _question(drv: _Driver, address, at) -> tuple[Block, datetime, dict, int, int]:
    """Validate one question; return it with its statement values and mask counts."""
    block = parse_address(address, "address")
    at = instant(at, "at") or datetime.now(UTC)
    fam, width, first = block.family, block.width, block.first
    values = {"t": drv.when(at), "a": to_bytes(first), "f": fam, "m0": None}
    held = drv.lengths("holding", fam)
    for i, plen in enumerate(held):
        values[f"m{i}"] = to_bytes(first >> (width - plen) << (width - plen))
    pooled = drv.lengths("pool", fam)
    for i, plen in enumerate(pooled):
        values[f"p{i}"] = to_bytes(first >> (width - plen) << (width - plen))
    return block, at, values, len(held), len(pooled)


def _held(drv: _Driver, block: Block, at: datetime, row) -> Attribution:
    (a_id, a_first, a_plen, purpose, a_from, a_to, a_end, p_id, p_name, p_first, p_plen,
     customer, s_id, s_first, s_plen, s_from, s_to, sublessee) = row  # fmt: skip
    fam = block.family
    result = Attribution(
        address=str(block),
        at=at,
        status="subleased" if s_id else "allocated",
        pool={"id": p_id, "name": p_name, "prefix": _prefix(fam, p_first, p_plen)},
        allocation={
            "id": a_id,
            "prefix": _prefix(fam, a_first, a_plen),
            "purpose": purpose,
            "valid_from": drv.instant(a_from),
            "valid_to": drv.instant(a_to),
            "end_reason": a_end,
        },
        customer=drv.json(customer),
    )
    if s_id:
        result.sublease = {
            "id": s_id,
            "prefix": _prefix(fam, s_first, s_plen),
            "valid_from": drv.instant(s_from),
            "valid_to": drv.instant(s_to),
        }
        result.sublessee = drv.json(sublessee)
    return result


def _unheld(drv: _Driver, block: Block, at: datetime, row) -> Attribution:
    if row is None:
        return Attribution(
            address=str(block),
            at=at,
            status="unmanaged",
            notes=["the address lies in none of the provider's pools"],
        )
    p_id, p_name, p_first, p_plen, q_id, q_first, q_plen, since, until, reason, q_alloc = row
    pool_info = {"id": p_id, "name": p_name, "prefix": _prefix(block.family, p_first, p_plen)}
    if q_id is None:
        return Attribution(address=str(block), at=at, status="free", pool=pool_info)
    return Attribution(
        address=str(block),
        at=at,
        status="quarantined",
        pool=pool_info,
        quarantine={
            "id": q_id,
            "prefix": _prefix(block.family, q_first, q_plen),
            "since": drv.instant(since),
            "until": drv.instant(until),
            "reason": reason,
            "allocation_id": q_alloc,
        },
    )


def _attribute_checked(drv: _Driver, address, at) -> Attribution:
    """PostgreSQL: one round trip for a held address with the lengths cached (two for an
    unheld one); when the lengths changed since, they are read again and the question asked
    once more."""
    for _ in range(2):
        block, at_, values, held, pooled = _question(drv, address, at)
        first, *row = drv.fetch("checked", values, held)
        fam = block.family
        if (int(first), int(row.pop(0))) != (
            _fingerprint(drv.lengths("holding", fam)),
            _fingerprint(drv.lengths("pool", fam)),
        ):
            drv.forget(fam)
            continue
        if row[0] is not None:
            return _held(drv, block, at_, row)
        unheld = drv.fetch("unheld", values, held, pooled) if pooled else None
        return _unheld(drv, block, at_, unheld)
    return _attribute(_Driver(drv.direct), address, at)  # lengths changing under us: uncached


def _fingerprint(lengths: list[int]) -> int:
    return sum(1 << p for p in set(lengths))


def _attribute(drv: _Driver, address, at) -> Attribution:
    block, at, values, held, pooled = _question(drv, address, at)
    row = drv.fetch("holder", values, held) if held else None
    if row is not None:
        return _held(drv, block, at, row)
    row = drv.fetch("unheld", values, held, pooled) if pooled else None
    return _unheld(drv, block, at, row)


@lru_cache(maxsize=64)
def _batch_sql(kind: str, masks: int, pool_masks: int) -> tuple[str, tuple[str, ...]]:
    """PostgreSQL: answer a whole chunk of questions in one round trip (unnest + LATERAL)."""
    inner = re.sub(r"(?<![:\w]):(\w+)", r"ask.\1", _sql(kind, masks, pool_masks))
    cols = (
        "i",
        "a",
        "t",
        "f",
        *(f"m{k}" for k in range(max(masks, 1))),
        *(f"p{k}" for k in range(pool_masks)),
    )
    types = {"i": "int", "t": "timestamp", "f": "int"}
    # Binary parameters (%b): the arrays of addresses go as bytes, not as escaped text.
    arrays = ", ".join(f"%b::{types.get(c, 'bytea')}[]" for c in cols)
    sql = (
        f"SELECT ask.i, h.* FROM unnest({arrays}) AS ask({', '.join(cols)}) "
        f"CROSS JOIN LATERAL ({inner}) AS h"
    )
    return sql, cols


def _batch(drv: _Driver, kind: str, questions: list, masks: int, pool_masks: int) -> dict:
    sql, cols = _batch_sql(kind, masks, pool_masks)
    arrays = [[i for i, _ in questions]]
    arrays += [[values.get(c) for _, values in questions] for c in cols[1:]]
    cur = drv.raw.cursor()
    try:
        cur.execute(sql, arrays)
        return {row[0]: row[1:] for row in cur.fetchall()}
    finally:
        cur.close()


def _answer_many(drv: _Driver, items, kind: str, chunk: int):
    """(block, at, held row or None, unheld row or None) per (address, at), in input order.

    `kind` is the statement for held addresses ("holder" or "ids"). On
    PostgreSQL each chunk is answered in one or two round trips; SQLite,
    in-process, answers each question directly.
    """
    items = list(items)
    for start in range(0, len(items), chunk):
        asked = [_question(drv, address, at) for address, at in items[start : start + chunk]]
        if drv.sqlite:
            for block, at, values, held, pooled in asked:
                row = drv.fetch(kind, values, held) if held else None
                if row is not None:
                    yield block, at, row, None
                else:
                    yield (
                        block,
                        at,
                        None,
                        (drv.fetch("unheld", values, held, pooled) if pooled else None),
                    )
            continue
        by_family: dict[int, list[int]] = {}
        for i, (block, *_rest) in enumerate(asked):
            by_family.setdefault(block.family, []).append(i)
        answers: dict[int, tuple] = {}
        for idx in by_family.values():
            _, _, _, held, pooled = asked[idx[0]]
            questions = [(i, asked[i][2]) for i in idx]
            rows = _batch(drv, kind, questions, held, pooled) if held else {}
            for i, row in rows.items():
                answers[i] = (row, None)
            rest = [(i, v) for i, v in questions if i not in rows]
            if rest:
                rows = _batch(drv, "unheld", rest, held, pooled) if pooled else {}
                for i, _values in rest:
                    answers[i] = (None, rows.get(i))
        for i, (block, at, *_rest) in enumerate(asked):
            yield block, at, *answers[i]


def attribute_many(session: Session, items, chunk: int = 1000) -> list[Attribution]:
    """Attribute many (address, at) pairs (abuse batches, reports), in input order."""
    drv = _Driver(session)
    return [
        _held(drv, block, at, held) if held is not None else _unheld(drv, block, at, unheld)
        for block, at, held, unheld in _answer_many(drv, items, "holder", chunk)
    ]


@dataclass
class Holder:
    """Who held one address at one instant, as keys: what abuse intake needs, fast."""

    status: str  # allocated | subleased | quarantined | free | unmanaged
    allocation_id: int | None = None
    customer_id: int | None = None
    sublease_id: int | None = None
    sublessee_id: int | None = None


def holders_many(session: Session, items, chunk: int = 1000) -> list[Holder]:
    """The holder keys of many (address, at) pairs, in input order (no revisions read)."""
    drv = _Driver(session)
    out = []
    for _block, _at, held, unheld in _answer_many(drv, items, "ids", chunk):
        if held is not None:
            a_id, c_id, s_id, sl_id = held
            out.append(Holder("subleased" if s_id else "allocated", a_id, c_id, s_id, sl_id))
        elif unheld is None:
            out.append(Holder("unmanaged"))
        else:
            out.append(Holder("quarantined" if unheld[4] is not None else "free"))
    return out


def reveal(session: Session, address, at=None, *, actor: str, reason: str) -> Attribution:
    """Return the unmasked answer, recording who looked and why (invariant 9)."""
    from . import audit
    from .privacy import check_reveal

    reason = check_reveal(reason)
    result = attribution(session, address, at)
    audit.record(
        session,
        actor,
        "attribution.reveal",
        "attribution",
        {"address": result.address, "at": result.at, "reason": reason},
    )
    return result
