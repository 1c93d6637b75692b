"""The address map of a prefix: how much of each cell is allocated, subleased, quarantined.

A /24 maps one address to a cell; larger prefixes are cut into at most
`max_cells` equal cells (a /16 into 1,024 cells of 64 addresses), so a
fully allocated /16 is one indexed range read per table and a pass over the
rows, never a page of 65,536 cells.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .addresses import Block, parse_block, to_bytes
from .models import Allocation, MapBig, MapTally, Quarantine, Sublease

STATES = ("free", "allocated", "subleased", "quarantined")


@dataclass
class Cell:
    block: Block
    allocated: int = 0  # addresses held by a customer, subleased ones included
    subleased: int = 0
    quarantined: int = 0

    @property
    def state(self) -> str:
        """The state covering most of the cell's addresses (ties go to the busier state)."""
        size = self.block.size
        shares = {
            "subleased": self.subleased,
            "allocated": self.allocated - self.subleased,
            "quarantined": self.quarantined,
        }
        shares["free"] = size - self.allocated - self.quarantined
        return max(STATES[::-1], key=lambda s: shares[s])

    @property
    def used(self) -> float:
        return (self.allocated + self.quarantined) / self.block.size


@dataclass
class AddressMap:
    block: Block
    cell_prefixlen: int
    cells: list[Cell]

    def totals(self) -> dict:
        return {
            "size": self.block.size,
            "allocated": sum(c.allocated for c in self.cells),
            "subleased": sum(c.subleased for c in self.cells),
            "quarantined": sum(c.quarantined for c in self.cells),
        }


def _spans(session: Session, model, block: Block, *where):
    """(first, last) of the current rows overlapping `block`, as integers.

    Blocks nest or are disjoint, so a row meets `block` only by starting inside it
    (one index range) or by containing it (its `first` is block.first masked to a
    shorter length: equality look-ups). The cost follows what is inside the prefix,
    not everything below it in the address space.
    """
    lo, hi = to_bytes(block.first), to_bytes(block.last)
    inside = session.execute(
        select(model.first, model.last).where(
            model.family == block.family, model.first >= lo, model.first <= hi, *where
        )
    )
    covering = {
        to_bytes(block.first & ~((1 << (block.width - plen)) - 1))
        for plen in range(block.prefixlen)
    }
    around = (
        session.execute(
            select(model.first, model.last).where(
                model.family == block.family,
                model.first.in_(covering),
                model.first < lo,
                model.last >= lo,
                *where,
            )  # fmt: skip
        )
        if covering
        else ()
    )
    for rows in (inside, around):
        for first, last in rows:
            yield int.from_bytes(first, "big"), int.from_bytes(last, "big")


def _add(counts: list[int], base: int, shift: int, first: int, last: int, lo: int, hi: int):
    first, last = max(first, lo), min(last, hi)
    if first > last:
        return
    a, b = (first - base) >> shift, (last - base) >> shift
    if a == b:
        counts[a] += last - first + 1
        return
    size = 1 << shift
    counts[a] += size - ((first - base) & (size - 1))
    for i in range(a + 1, b):
        counts[i] += size
    counts[b] += ((last - base) & (size - 1)) + 1


# IPv4 prefixes this large or larger are drawn from the tally (migration 0013): a /16 holds
# up to 65,536 single-address allocations, a /8 millions; a /17 or smaller is read whole.
TALLY_UP_TO = 16
TALLY_LEVELS = (16, 20, 24)


def address_map(
    session: Session, prefix, max_cells: int = 1024, *, tally: bool = True
) -> AddressMap:
    """Return the map of `prefix` now, in at most `max_cells` cells (a power of two).

    A large IPv4 prefix (a /16 or larger) is drawn from the per-/16, /20 and /24 counts
    the database keeps (its cells are then no finer than a /24), so its cost is the same
    at a million holdings as at ten thousand; `tally=False` reads every holding instead.
    """
    block = prefix if isinstance(prefix, Block) else parse_block(prefix, "prefix")
    extra = max(0, max_cells.bit_length() - 1)
    cell_plen = min(block.width, block.prefixlen + extra)
    if tally and block.family == 4 and block.prefixlen <= TALLY_UP_TO:
        return _from_tally(session, block, cell_plen)
    shift = block.width - cell_plen
    n = 1 << (cell_plen - block.prefixlen)
    base, top = block.first, block.last
    counts = {"allocated": [0] * n, "subleased": [0] * n, "quarantined": [0] * n}
    sources = (
        ("allocated", Allocation, (Allocation.valid_to.is_(None),)),
        ("subleased", Sublease, (Sublease.valid_to.is_(None),)),
        ("quarantined", Quarantine, (Quarantine.released_at.is_(None),)),
    )
    for name, model, where in sources:
        target = counts[name]
        for first, last in _spans(session, model, block, *where):
            _add(target, base, shift, first, last, base, top)
    cells = [
        Cell(
            Block(block.family, base + (i << shift), cell_plen),
            counts["allocated"][i],
            counts["subleased"][i],
            counts["quarantined"][i],
        )
        for i in range(n)
    ]
    return AddressMap(block, cell_plen, cells)


def _from_tally(session: Session, block: Block, cell_plen: int) -> AddressMap:
    """The map from the tally's counts at the coarsest level at least as fine as the map's
    cells (a /24 at most), plus the few holdings larger than that level."""
    cell_plen = min(cell_plen, TALLY_LEVELS[-1])  # no finer than the finest counts
    level = next(lv for lv in TALLY_LEVELS if lv >= cell_plen)  # the coarsest fine enough
    shift = block.width - cell_plen
    n = 1 << (cell_plen - block.prefixlen)
    base, top = block.first, block.last
    counts = {"allocated": [0] * n, "subleased": [0] * n, "quarantined": [0] * n}
    lo, hi = base >> (32 - level), top >> (32 - level)
    rows = session.execute(
        select(MapTally.cell, MapTally.allocated, MapTally.subleased, MapTally.quarantined).where(
            MapTally.family == 4, MapTally.level == level, MapTally.cell.between(lo, hi)
        )
    )
    for cell, allocated, subleased, quarantined in rows:
        i = ((cell << (32 - level)) - base) >> shift
        counts["allocated"][i] += allocated
        counts["subleased"][i] += subleased
        counts["quarantined"][i] += quarantined
    # Holdings larger than a /24 are listed apart; those no larger than the level are in
    # its counts already.
    small, large = to_bytes(base), to_bytes(top)
    for kind, first, last in session.execute(
        select(MapBig.kind, MapBig.first, MapBig.last).where(
            MapBig.family == 4, MapBig.first <= large, MapBig.last >= small
        )
    ):
        first, last = int.from_bytes(first, "big"), int.from_bytes(last, "big")
        if last - first + 1 <= 1 << (32 - level):
            continue  # it fits in one cell of the level: counted there already
        _add(counts[kind], base, shift, first, last, base, top)
    cells = [
        Cell(
            Block(4, base + (i << shift), cell_plen),
            counts["allocated"][i],
            counts["subleased"][i],
            counts["quarantined"][i],
        )
        for i in range(n)
    ]
    return AddressMap(block, cell_plen, cells)
