"""A pool's free space as its maximal CIDR blocks, kept in step with the ledger.

Why: "next free /n" must be one indexed lookup whatever the pool holds, not
a scan of its holdings. The free blocks of a pool are exactly the maximal
aligned blocks inside its free space (a buddy allocator's free lists), so a
request for /n can be met iff some free block has prefixlen <= n, and the
smallest such block is taken first (best fit keeps large blocks whole).

Callers hold the pool's lock (pools.lock_pool) around every change here.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from .addresses import Block, exclude, range_to_blocks, to_bytes
from .db import COPY_FROM, insert_plain
from .models import FreeBlock

# Core table and columns: these statements run under a pool's lock on every
# allocation, so they skip the ORM's per-statement bookkeeping.
TABLE = FreeBlock.__table__
C = TABLE.c


def _row(pool_id: int, block: Block) -> dict:
    return {"pool_id": pool_id, **block.columns()}


def add_blocks(session: Session, pool_id: int, blocks: Iterable[Block]) -> None:
    """Insert free blocks in one statement: a multi-row INSERT, or a COPY when many (the
    free tally's PostgreSQL trigger then counts them once, migration 0014)."""
    rows = [_row(pool_id, b) for b in blocks]
    if len(rows) >= COPY_FROM:
        insert_plain(session, TABLE, rows)
    elif rows:
        session.execute(insert(TABLE).values(rows))


def containing(session: Session, pool_id: int, block: Block) -> tuple[int, Block] | None:
    """Return (row id, free block) of the free block that contains `block`, if any."""
    row = session.execute(
        select(C.id, C.family, C.first, C.prefixlen)
        .where(C.pool_id == pool_id, C.first <= to_bytes(block.first))
        .order_by(C.first.desc())
        .limit(1)
    ).first()
    if row is not None:
        free = Block.of(row.family, row.first, row.prefixlen)
        if free.contains(block):
            return row.id, free
    return None


def take(session: Session, pool_id: int, block: Block) -> bool:
    """Remove `block` from the pool's free space; False if it is not all free."""
    found = containing(session, pool_id, block)
    if found is None:
        return False
    split(session, pool_id, found[0], found[1], block)
    return True


def split(session: Session, pool_id: int, free_id: int, outer: Block, block: Block) -> None:
    """Replace free block `outer` (row free_id) by its parts outside `block`."""
    session.execute(delete(TABLE).where(C.id == free_id))
    if outer != block:
        add_blocks(session, pool_id, exclude(outer, block))


def _take_free_statement():
    """The smallest free block that fits a /plen, lowest first (the smallest fitting size as
    a scalar subquery, then its lowest block: index lookups on (pool_id, prefixlen, first)),
    removed and returned."""
    pool, plen = bindparam("pool"), bindparam("plen")
    best = (
        select(func.max(C.prefixlen)).where(C.pool_id == pool, C.prefixlen <= plen)
    ).scalar_subquery()
    lowest = (
        select(C.id).where(C.pool_id == pool, C.prefixlen == best).order_by(C.first).limit(1)
    ).scalar_subquery()
    return delete(TABLE).where(C.id == lowest).returning(C.family, C.first, C.prefixlen)


_TAKE_FREE = _take_free_statement()  # built once: allocation's hot path


def take_free(session: Session, pool_id: int, prefixlen: int) -> tuple[Block, Block] | None:
    """Take room for a /prefixlen out of the free space (the smallest free block that fits,
    lowest first) and put back what is left of that block; return (the /prefixlen, the
    free block).

    One statement finds and removes the free block (DELETE ... RETURNING), a second puts
    back the rest: allocation's hot path. The caller holds the pool's lock.
    """
    row = session.execute(_TAKE_FREE, {"pool": pool_id, "plen": prefixlen}).first()
    if row is None:
        return None
    outer = Block.of(row.family, row.first, row.prefixlen)
    block = Block(outer.family, outer.first, prefixlen)
    if outer != block:
        add_blocks(session, pool_id, exclude(outer, block))
    return block, outer


def give_back(session: Session, pool_id: int, pool_block: Block, block: Block) -> None:
    """Return `block` to the pool's free space, merging with free buddies."""
    while block.prefixlen > pool_block.prefixlen:
        buddy = block.buddy()
        found = session.execute(
            delete(TABLE)
            .where(
                C.pool_id == pool_id,
                C.first == to_bytes(buddy.first),
                C.prefixlen == buddy.prefixlen,
            )
            .returning(C.id)
        ).first()
        if found is None:
            break
        block = block.parent()
    add_blocks(session, pool_id, [block])


def free_size(session: Session, pool_id: int) -> int:
    """Return the number of free addresses in the pool (exact, even for IPv6)."""
    rows = session.execute(
        select(FreeBlock.family, FreeBlock.prefixlen, func.count())
        .where(FreeBlock.pool_id == pool_id)
        .group_by(FreeBlock.family, FreeBlock.prefixlen)
    ).all()
    return sum(n << (Block(f, 0, p).width - p) for f, p, n in rows)


def rebuild(session: Session, pool_id: int, pool_block: Block, occupied: Iterable[Block]) -> int:
    """Recompute the free space from the pool's occupied blocks, given sorted by first.

    Used after bulk loads and for repair; streams, never holds the holdings.
    Returns the number of free blocks written.
    """
    session.execute(delete(FreeBlock).where(FreeBlock.pool_id == pool_id))
    cursor = pool_block.first
    written = 0
    pending: list[Block] = []
    for held in occupied:
        if held.first > cursor:
            pending.extend(range_to_blocks(pool_block.family, cursor, held.first - 1))
        cursor = max(cursor, held.last + 1)
        if len(pending) > 5000:
            add_blocks(session, pool_id, pending)
            written += len(pending)
            pending = []
    if cursor <= pool_block.last:
        pending.extend(range_to_blocks(pool_block.family, cursor, pool_block.last))
    add_blocks(session, pool_id, pending)
    return written + len(pending)
