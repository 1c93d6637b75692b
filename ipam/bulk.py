"""Bulk allocation imports that never block live work.

An import used to run row by row in one transaction holding its pools'
locks (and, at commit, the audit chain's head) for its whole run: every live
allocation waited minutes. Now it runs in two phases:

1. **Check, holding nothing.** The whole file is parsed and validated in
   memory; pools and customers are resolved and the rows are checked against
   each other and against the ledger (holdings, quarantine, child pools) with
   a few range reads in a read-only transaction, which on SQLite takes no
   write lock. Every bad row is reported (line, field, reason). With any bad
   row nothing is written (unless the caller skips bad rows).
2. **Write in short chunks.** CHUNK rows per transaction: lock the chunk's
   pools, take the chunk's blocks out of the free space in one range read and
   one delete/insert, insert the rows and their audit entries in bulk, commit.
   A live allocation waits for one chunk at most (a fraction of a second).

All-or-nothing is kept by the batch: every row written carries the batch's
id (allocation.import_batch_id) and the batch stays "writing" until its last
chunk commits. If a chunk fails (a live allocation took a block the file
names between the check and the write), the chunks written so far are
withdrawn: their rows deleted, their space given back, each withdrawal in
the audit log. An import killed mid-way leaves its batch "writing"; a later
import refuses to start until it is withdrawn (`ipam import-undo N`).
Rows that ask for the next free block (no prefix) are written by allocate()
one by one inside their chunk: they cannot be checked ahead.
"""

from __future__ import annotations

import bisect
import csv
import gc
import hashlib
import io
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, scoped_session

from . import audit, freespace
from .addresses import Block, check_prefixlen, from_bytes, parse_block, range_to_blocks, to_bytes
from .allocation import (
    allocate,
    effective_time,
    end_allocation,
    record_length,
    usable_customer,
)
from .db import (
    insert_plain,
    insert_stored,
    lock_named,
    reading,
    reserve_ids,
    stored_when,
    utcnow,
)
from .errors import AddressConflict, IpamError, StateConflict, ValidationError
from .models import (
    AbuseCase,
    Allocation,
    ImportBatch,
    ImportStatus,
    Pool,
    Quarantine,
    Sublease,
)
from .pools import get_pool, lock_pool
from .validation import instant

CHUNK = 5000  # rows per transaction: a live allocation waits one chunk at most
# SQLite's write lock has no queue: between two chunks the import steps aside while
# others commit (writers waiting for the lock retry every few milliseconds, see ipam.db),
# for SQLITE_STEP at least and SQLITE_GAP at most, so live writers get in between chunks.
SQLITE_STEP = 0.01
SQLITE_GAP = 0.1
MAX_PURPOSE = 2000
REQUIRED = {"pool", "customer"}
OPTIONAL = {"prefix", "length", "purpose", "valid_from", "valid_to"}


@dataclass
class RowError:
    row: int  # line number in the file; the header is line 1
    field: str
    message: str


@dataclass(slots=True)
class Row:
    line: int
    pool: Pool
    customer_id: int
    block: Block | None  # None: the next free /length
    length: int | None
    purpose: str
    valid_from: datetime
    valid_to: datetime | None


@dataclass
class BulkReport:
    rows: int = 0
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)
    batch_id: int | None = None
    withdrawn: bool = False


def _read(stream, report: BulkReport) -> tuple[list[tuple[int, dict]], bytes] | None:
    raw = stream.read()
    data = raw.encode() if isinstance(raw, str) else raw
    text = data.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    reader = csv.reader(io.StringIO(text, newline=""))
    names = [h.strip() for h in next(reader, [])]
    header = set(names)
    missing, unknown = REQUIRED - header, header - REQUIRED - OPTIONAL
    if missing or unknown:
        for name in sorted(missing):
            report.errors.append(RowError(1, name, "column is missing"))
        for name in sorted(unknown):
            report.errors.append(RowError(1, name, "is not a column of an allocations file"))
        return None
    rows = []
    for values in reader:
        if not values:
            continue  # a blank line, as DictReader skips it
        cells = [v.strip() for v in values]  # a short line leaves its last columns empty
        rows.append((reader.line_num, dict(zip(names, cells, strict=False))))
    return rows, data


class _Refs:
    """Pools and customers by the text the file names them with, each looked up once."""

    def __init__(self, session: Session):
        self.session, self.pools, self.customers, self.spaces = session, {}, {}, {}

    def space(self, pool: Pool) -> Block:
        """The pool's block, built once (a property of the row would build it per row)."""
        if pool.id not in self.spaces:
            self.spaces[pool.id] = pool.block
        return self.spaces[pool.id]

    def pool(self, ref: str) -> Pool:
        return self._once(self.pools, ref, lambda: get_pool(self.session, ref))

    def customer(self, ref: str) -> int:
        """An active customer's id, as allocate() would accept it."""
        return self._once(self.customers, ref, lambda: usable_customer(self.session, ref).id)

    @staticmethod
    def _once(cache: dict, ref: str, lookup):
        """The answer for `ref`, found once; a refusal is remembered and raised again."""
        if ref not in cache:
            try:
                cache[ref] = lookup()
            except IpamError as exc:
                cache[ref] = exc
        if isinstance(cache[ref], IpamError):
            raise cache[ref]
        return cache[ref]


def _parse(refs: _Refs, line: int, row: dict, now: datetime) -> Row:
    pool = refs.pool(row.get("pool", ""))
    customer_id = refs.customer(row.get("customer", ""))
    block, length = None, None
    if row.get("prefix"):
        block = parse_block(row["prefix"], "prefix")
        space = refs.space(pool)
        if block.family != space.family:
            raise ValidationError(
                "{block} is IPv{family} but pool {name!r} is IPv{pool_family}",
                "prefix",
                block=block,
                family=block.family,
                name=pool.name,
                pool_family=pool.family,
            )
        if not (space.first <= block.first and block.last <= space.last):
            raise ValidationError(
                "{block} is outside pool {name!r} ({prefix})",
                "prefix",
                block=block,
                name=pool.name,
                prefix=pool.prefix,
            )
    else:
        raw = row.get("length")
        length = (
            pool.block.width if raw in (None, "") else check_prefixlen(raw, pool.family, "length")
        )
        if length < pool.prefixlen:
            raise ValidationError(
                "/{length} is larger than pool {name!r}", "length", length=length, name=pool.name
            )
    purpose = row.get("purpose") or ""
    if len(purpose) > MAX_PURPOSE:
        raise ValidationError(
            "is longer than {MAX_PURPOSE} characters", "purpose", MAX_PURPOSE=MAX_PURPOSE
        )
    given = row.get("valid_from")
    valid_from = effective_time(given, "valid_from") if given else now
    valid_to = instant(row.get("valid_to") or None, "valid_to")
    if valid_to is not None:
        if valid_to < valid_from:
            raise ValidationError(
                "{valid_to} is before valid_from {valid_from}",
                "valid_to",
                valid_to=valid_to.isoformat(),
                valid_from=valid_from.isoformat(),
            )
        effective_time(valid_to, "valid_to")  # not in the future
    return Row(line, pool, customer_id, block, length, purpose, valid_from, valid_to)


def _overlap_in_time(a_from, a_to, b_from, b_to) -> bool:
    return (a_to is None or b_from < a_to) and (b_to is None or a_from < b_to)


def _check_file(rows: list[Row]) -> dict[int, RowError]:
    """Rows of the file that overlap each other in space and time (the later one is wrong)."""
    bad: dict[int, RowError] = {}
    by_family: dict[int, list[Row]] = defaultdict(list)
    for r in rows:
        if r.block is not None:
            by_family[r.block.family].append(r)
    for items in by_family.values():
        items.sort(key=lambda r: (r.block.first, -r.block.last))
        open_rows: list[Row] = []  # rows whose range may still contain the next ones
        for r in items:
            open_rows = [o for o in open_rows if o.block.last >= r.block.first]
            for o in open_rows:
                if _overlap_in_time(o.valid_from, o.valid_to, r.valid_from, r.valid_to):
                    late, early = (r, o) if r.line > o.line else (o, r)
                    bad.setdefault(
                        late.line,
                        RowError(late.line, "prefix", f"{late.block} overlaps line {early.line} "
                                 f"({early.block}) in the same time"),
                    )  # fmt: skip
            open_rows.append(r)
    return bad


def _check_ledger(session: Session, rows: list[Row]) -> dict[int, RowError]:
    """Rows that meet a holding, a quarantine or a child pool already in the ledger."""
    bad: dict[int, RowError] = {}
    by_pool: dict[int, list[Row]] = defaultdict(list)
    for r in rows:
        if r.block is not None:
            by_pool[r.pool.id].append(r)
    for pool_id, items in by_pool.items():
        items.sort(key=lambda r: r.block.first)
        family = items[0].block.family
        lo, hi = items[0].block.first, max(r.block.last for r in items)
        lo_b, hi_b = to_bytes(lo), to_bytes(hi)
        # Every stored block is a CIDR block: one meets `b` only inside it or around it.
        others = [
            (from_bytes(first), plen, vf, vt, "held")
            for first, plen, vf, vt in session.execute(
                select(
                    Allocation.first, Allocation.prefixlen, Allocation.valid_from,
                    Allocation.valid_to,
                ).where(
                    Allocation.pool_id == pool_id,
                    Allocation.family == family,
                    Allocation.first <= hi_b,
                    Allocation.last >= lo_b,
                )
            )
        ]  # fmt: skip
        for first, plen, until in session.execute(
            select(Quarantine.first, Quarantine.prefixlen, Quarantine.until).where(
                Quarantine.family == family,
                Quarantine.released_at.is_(None),
                Quarantine.first <= hi_b,
                Quarantine.last >= lo_b,
            )
        ):
            others.append(
                (from_bytes(first), plen, None, None, f"quarantined until {until.isoformat()}")
            )
        for first, plen, name in session.execute(
            select(Pool.first, Pool.prefixlen, Pool.name).where(
                Pool.parent_id == pool_id, Pool.first <= hi_b, Pool.last >= lo_b
            )
        ):
            others.append((from_bytes(first), plen, None, None, f"child pool {name!r}"))
        if not others:
            continue
        others.sort(key=lambda o: o[0])
        starts = [o[0] for o in others]
        around: dict[tuple[int, int], list] = defaultdict(list)
        for o in others:
            around[(o[0], o[1])].append(o)
        width = 32 if family == 4 else 128
        for r in items:
            b = r.block
            meeting = others[
                bisect.bisect_left(starts, b.first) : bisect.bisect_right(starts, b.last)
            ]
            for plen in range(b.prefixlen, -1, -1):  # the blocks that contain b
                first = b.first & ~((1 << (width - plen)) - 1)
                meeting.extend(around.get((first, plen), ()))
            for _first, _plen, vf, vt, what in meeting:
                if what == "held":
                    if not _overlap_in_time(vf, vt, r.valid_from, r.valid_to):
                        continue
                    message = f"{b} overlaps a holding since {vf.isoformat()}"
                elif what.startswith("child pool"):
                    message = f"{b} overlaps the {what}; allocate from that pool"
                elif r.valid_to is None:
                    message = f"{b} overlaps a block {what}"
                else:
                    continue
                bad.setdefault(r.line, RowError(r.line, "prefix", message))
                break
    return bad


def check(session: Session, stream) -> tuple[list[Row], BulkReport, bytes]:
    """Phase 1: every row parsed and checked; the good rows, and the report of the bad."""
    report = BulkReport()
    read = _read(stream, report)
    if read is None:
        return [], report, b""
    raw_rows, data = read
    report.rows = len(raw_rows)
    good: list[Row] = []
    now = utcnow()  # rows without valid_from take effect at the import's start
    with reading(session):
        refs = _Refs(session)
        for line, row in raw_rows:
            try:
                good.append(_parse(refs, line, row, now))
            except IpamError as exc:
                report.errors.append(RowError(line, exc.field or "-", exc.message))
        bad = _check_file(good) | _check_ledger(session, good)
    if bad:
        report.errors.extend(bad.values())
        good = [r for r in good if r.line not in bad]
    report.errors.sort(key=lambda e: e.row)
    return good, report, data


def running(session: Session) -> ImportBatch | None:
    """An import that is being written, or was interrupted and must be withdrawn first."""
    return session.scalars(
        select(ImportBatch).where(ImportBatch.status == ImportStatus.WRITING).limit(1)
    ).first()


def import_allocations(
    session: Session,
    stream,
    *,
    actor: str,
    chunk_done: Callable[[], None],
    skip_errors: bool = False,
    file_name: str = "",
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BulkReport:
    """Check the whole file, then write it in chunks of `chunk` rows (see the module's doc).

    `chunk_done` (ipam.db.chunk_done) commits each chunk. With bad rows and
    not `skip_errors`, nothing is written. A chunk that fails withdraws the
    batch and raises; the report then says so.
    """
    if not actor or not str(actor).strip():
        raise ValidationError("is required: say who makes the change", "actor")
    if isinstance(session, scoped_session):  # Flask-SQLAlchemy's proxy: its real session
        session = session()
    chunk_done()  # the caller's transaction ends here: the check reads in one of its own
    collecting = gc.isenabled()
    gc.disable()  # hundreds of thousands of rows and no cycles: the collector only costs time
    try:
        return _import(session, stream, actor, chunk_done, skip_errors, file_name, chunk, progress)
    finally:
        if collecting:
            gc.enable()


def _import(session, stream, actor, chunk_done, skip_errors, file_name, chunk, progress):
    rows, report, data = check(session, stream)
    chunk_done()  # the check's read transaction ends; writing begins in one of its own
    if report.errors and not skip_errors:
        return report
    lock_named(session, "ipam.import")  # one import at a time (SQLite: its write lock)
    other = running(session)
    if other is not None:
        raise StateConflict(
            "import {id} ({other}) is being written or was interrupted; when no import runs, "
            "withdraw it with `ipam import-undo {id}`",
            "import",
            id=other.id,
            other=other.file_name or other.kind,
        )
    batch = ImportBatch(
        kind="allocations",
        file_name=file_name[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        actor=actor,
        rows=len(rows),
        written=0,
        status=ImportStatus.WRITING,
        started_at=utcnow(),
    )
    session.add(batch)
    session.flush()
    audit.record(
        session, actor, "import.start", batch,
        {"kind": "allocations", "rows": len(rows), "sha256": batch.sha256},
    )  # fmt: skip
    batch_id = report.batch_id = batch.id
    chunk_done()
    sqlite = session.get_bind().dialect.name == "sqlite"
    chunk = chunk or CHUNK
    try:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            _write_chunk(session, batch_id, part, actor)
            session.get(ImportBatch, batch_id).written = start + len(part)
            chunk_done()
            if sqlite:  # room for waiting writers: SQLite's lock keeps no queue
                _step_aside(session)
            report.imported = start + len(part)
            if progress:
                progress(len(part))
    except IpamError as exc:  # raced by live work: withdraw what was written
        session.rollback()
        undo(session, batch_id, actor=actor, reason=str(exc), chunk_done=chunk_done)
        report.withdrawn, report.imported = True, 0
        report.errors.append(
            RowError(getattr(exc, "line", 0), exc.field or "-",
                     f"{exc.message}; the import was withdrawn whole")
        )  # fmt: skip
        return report
    except BaseException:  # a crash of another kind: withdraw if we still can, then raise
        session.rollback()
        try:
            undo(session, batch_id, actor=actor, reason="the import failed", chunk_done=chunk_done)
        except Exception:  # noqa: BLE001 - the batch stays "writing": `ipam import-undo`
            session.rollback()
        raise
    finished = session.get(ImportBatch, batch_id)
    finished.status, finished.finished_at = ImportStatus.DONE, utcnow()
    audit.record(session, actor, "import.done", finished, {"rows": len(rows)})
    chunk_done()
    return report


def _step_aside(session: Session) -> None:
    """Wait while other connections keep committing (SQLite), a few milliseconds if none do."""
    raw = session.get_bind().raw_connection()  # outside any transaction: no lock taken
    try:
        seen = raw.execute("PRAGMA data_version").fetchone()[0]
        waited = 0.0
        while waited < SQLITE_GAP:
            time.sleep(SQLITE_STEP)
            waited += SQLITE_STEP
            now = raw.execute("PRAGMA data_version").fetchone()[0]
            if now == seen:
                break  # nobody committed in the last step: go on
            seen = now
    finally:
        raw.close()


def _write_chunk(session: Session, batch_id: int, rows: list[Row], actor: str) -> None:
    explicit = [r for r in rows if r.block is not None]
    for pool_id in sorted({r.pool.id for r in rows}):
        lock_pool(session, pool_id)
    for key in sorted({(r.block.family, r.block.prefixlen) for r in explicit}):
        record_length(session, Block(key[0], 0, key[1]))
    current = defaultdict(list)
    for r in explicit:
        if r.valid_to is None:
            current[r.pool.id].append(r)
    for pool_id, items in current.items():
        _take(session, pool_id, items)
    ids = reserve_ids(session, "allocation", len(explicit))
    when = stored_when(session)
    now = when(utcnow())
    names = [
        "id", "pool_id", "customer_id", "family", "first", "last", "prefixlen", "purpose",
        "valid_from", "valid_to", "end_reason", "end_note", "created_at", "import_batch_id",
    ]  # fmt: skip
    values, added, ended = [], [], []
    pool_names = {r.pool: r.pool.name for r in explicit}
    for i, r in zip(ids, explicit, strict=True):
        b = r.block
        prefix = str(b)
        values.append(
            (i, r.pool.id, r.customer_id, b.family, b.first.to_bytes(16, "big"),
             b.last.to_bytes(16, "big"), b.prefixlen, r.purpose, when(r.valid_from),
             when(r.valid_to), "ended" if r.valid_to else None, None, now, batch_id)
        )  # fmt: skip
        added.append(  # what allocate() records, in the audit's canonical form (sorted keys)
            (i, audit.canonical_object((
                ("customer_id", r.customer_id), ("import", batch_id),
                ("pool", pool_names[r.pool]), ("prefix", prefix), ("purpose", r.purpose),
                ("valid_from", r.valid_from.isoformat()),
            )))
        )  # fmt: skip
        if r.valid_to is not None:
            end = (("prefix", prefix), ("reason", "ended"), ("valid_to", r.valid_to.isoformat()))
            ended.append((i, audit.canonical_object(end)))
    insert_stored(session, Allocation.__table__, names, values)
    audit.record_many(session, actor, "allocation.add", "allocation", added)
    audit.record_many(session, actor, "allocation.end", "allocation", ended)
    for r in rows:
        if r.block is not None:
            continue
        try:
            alloc = allocate(session, r.pool, r.customer_id, prefixlen=r.length,
                             purpose=r.purpose, at=r.valid_from, actor=actor)  # fmt: skip
            alloc.import_batch_id = batch_id
            if r.valid_to is not None:
                end_allocation(session, alloc, at=r.valid_to, actor=actor, quarantine_days=0)
        except IpamError as exc:
            exc.line = r.line
            raise


def _take(session: Session, pool_id: int, rows: list[Row]) -> None:
    """Take the rows' blocks out of the pool's free space: one range read, one rewrite."""
    rows.sort(key=lambda r: r.block.first)
    family = rows[0].block.family
    lo, hi = rows[0].block.first, rows[-1].block.last
    C = freespace.C
    start = session.execute(  # the free block that holds the first row's start, if any
        select(C.first)
        .where(C.pool_id == pool_id, C.family == family, C.first <= to_bytes(lo))
        .order_by(C.first.desc())
        .limit(1)
    ).scalar()
    free = session.execute(
        select(C.id, C.first, C.prefixlen)
        .where(
            C.pool_id == pool_id,
            C.family == family,
            C.first >= (start if start is not None else to_bytes(lo)),
            C.first <= to_bytes(hi),
        )
        .order_by(C.first)
    ).all()
    blocks = [(fid, Block.of(family, first, plen)) for fid, first, plen in free]
    gone, new, j = [], [], 0
    for fid, fb in blocks:
        inside = []
        while j < len(rows) and rows[j].block.first <= fb.last:
            if rows[j].block.first < fb.first or rows[j].block.last > fb.last:
                break
            inside.append(rows[j])
            j += 1
        if not inside:
            continue
        gone.append(fid)
        cursor = fb.first
        for r in inside:
            if r.block.first > cursor:
                new.extend(range_to_blocks(family, cursor, r.block.first - 1))
            cursor = r.block.last + 1
        if cursor <= fb.last:
            new.extend(range_to_blocks(family, cursor, fb.last))
    if j < len(rows):  # taken since the check: by a live allocation, or a child pool
        exc = AddressConflict("{block} is no longer free", "prefix", block=rows[j].block)
        exc.line = rows[j].line
        raise exc
    for k in range(0, len(gone), 1000):
        session.execute(delete(freespace.TABLE).where(C.id.in_(gone[k : k + 1000])))
    insert_plain(session, freespace.TABLE, [{"pool_id": pool_id, **b.columns()} for b in new])


def undo(
    session: Session,
    batch_id: int,
    *,
    actor: str,
    reason: str = "withdrawn by an operator",
    chunk_done: Callable[[], None] | None = None,
) -> int:
    """Withdraw an import that is not done: its rows go, their space comes back, each in the log.

    Refused for a finished import (its rows are the ledger now: end them instead) and
    for rows something else refers to already (a sublease, an abuse case).
    """
    if isinstance(session, scoped_session):
        session = session()
    batch = session.get(ImportBatch, batch_id)
    if batch is None:
        raise ValidationError("no import {batch_id}", "import", batch_id=batch_id)
    if batch.status != ImportStatus.WRITING:
        raise StateConflict(
            "import {batch_id} is {status}: only an unfinished import is withdrawn",
            "import",
            batch_id=batch_id,
            status=batch.status,
        )
    used = session.execute(
        select(Allocation.id)
        .where(Allocation.import_batch_id == batch_id)
        .where(
            select(Sublease.id).where(Sublease.allocation_id == Allocation.id).exists()
            | select(AbuseCase.id).where(AbuseCase.allocation_id == Allocation.id).exists()
        )
        .limit(1)
    ).scalar()
    if used is not None:
        raise StateConflict(
            "allocation {used} of import {batch_id} has a sublease or an abuse case already; "
            "end the import's allocations instead",
            "import",
            used=used,
            batch_id=batch_id,
        )
    removed = 0
    while True:
        part = session.scalars(
            select(Allocation)
            .where(Allocation.import_batch_id == batch_id)
            .order_by(Allocation.id)
            .limit(CHUNK)
        ).all()
        if not part:
            break
        for pool_id in sorted({a.pool_id for a in part}):
            lock_pool(session, pool_id)
        pools = {
            p.id: p
            for p in session.scalars(select(Pool).where(Pool.id.in_({a.pool_id for a in part})))
        }
        for a in part:
            if a.valid_to is None:
                freespace.give_back(session, a.pool_id, pools[a.pool_id].block, a.block)
        audit.record_many(
            session, actor, "allocation.withdraw", "allocation",
            [(a.id, {"prefix": a.prefix, "import": batch_id, "reason": reason}) for a in part],
        )  # fmt: skip
        gone = [a.id for a in part]
        for a in part:
            session.expunge(a)
        session.execute(
            delete(Allocation)
            .where(Allocation.id.in_(gone))
            .execution_options(synchronize_session=False)
        )
        removed += len(part)
        if chunk_done is not None:
            chunk_done()
    batch = session.get(ImportBatch, batch_id)
    batch.status, batch.finished_at, batch.error = ImportStatus.UNDONE, utcnow(), reason[:4000]
    audit.record(session, actor, "import.undo", batch, {"rows": removed, "reason": reason})
    if chunk_done is not None:
        chunk_done()
    return removed
