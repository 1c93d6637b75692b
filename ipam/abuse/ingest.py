"""Ingest complaints: keep the bytes, attribute at the event's time, open or join cases.

Attribution uses the event's own timestamp, never the arrival: a report dated
before a reclamation goes to the old holder. A report on a prefix reaches
every holder inside it. Reports on unallocated or quarantined space are kept
and flagged, never dropped. Unreadable input goes, byte for byte, to the
rejected store, and nothing else is written for it.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import ARRAY, LargeBinary, String, any_, cast, func, or_, select, true, update
from sqlalchemy.orm import Session

from .. import audit
from ..addresses import Block, to_bytes
from ..attribution import holders_many
from ..db import insert_plain, lock_named, reserve_ids, utcnow
from ..errors import NotFound, Phrase, ValidationError
from ..listing import ALL, Window, fetch
from ..lookup import current_at, overlapping
from ..models import (
    AbuseCase,
    AbuseCategory,
    AbuseReport,
    AbuseReportCase,
    Allocation,
    Quarantine,
    RejectedReport,
    RejectedStatus,
    Sublease,
)
from ..models import Holding as Space
from ..validation import choice
from . import formats, names

CASE_WINDOW = timedelta(days=7)
OPEN_STATES = ("open", "notified", "acknowledged", "escalated")
# Hours a customer has to answer, by category (clause 15: problems handled at once).
DEADLINE_HOURS = {
    AbuseCategory.ILLEGAL_CONTENT: 2,
    AbuseCategory.STATE_SECRETS: 2,
    AbuseCategory.PUBLIC_ORDER: 4,
    AbuseCategory.ATTACK: 24,
    AbuseCategory.MALWARE: 24,
    AbuseCategory.SPAM: 72,
    AbuseCategory.INFRINGEMENT: 72,
    AbuseCategory.UNAPPROVED_CONTENT: 72,
    AbuseCategory.OTHER: 72,
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    """How reports become cases: the grouping window and the answer deadline per category.

    Configurable per deployment (IPAM_ABUSE_CASE_WINDOW_DAYS, IPAM_ABUSE_DEADLINES);
    `from_config` reads a plain mapping, so ipam/ needs no Flask.
    """

    window: timedelta = CASE_WINDOW
    deadlines: tuple = tuple(sorted((c.value, h) for c, h in DEADLINE_HOURS.items()))
    # The broadest prefix a complaint may name (DROP-style feeds excepted, /0 never):
    # a report on 0.0.0.0/0 would open a case on every holding.
    widest: tuple = ((4, 16), (6, 32))

    def widest_for(self, family: int) -> int:
        return dict(self.widest)[family]

    def deadline(self, category: AbuseCategory) -> timedelta:
        return timedelta(hours=dict(self.deadlines)[category.value])

    @classmethod
    def from_config(cls, config) -> Policy:
        """IPAM_ABUSE_CASE_WINDOW_DAYS (> 0) and IPAM_ABUSE_DEADLINES ("spam=48,attack=12")."""
        days = config.get("IPAM_ABUSE_CASE_WINDOW_DAYS", 7)
        try:
            window = timedelta(days=float(days))
        except (TypeError, ValueError):
            raise ValidationError(
                "{days!r} is not a number of days", "IPAM_ABUSE_CASE_WINDOW_DAYS", days=days
            ) from None
        if window <= timedelta(0):
            raise ValidationError("must be more than 0 days", "IPAM_ABUSE_CASE_WINDOW_DAYS")
        hours = {c.value: h for c, h in DEADLINE_HOURS.items()}
        for item in str(config.get("IPAM_ABUSE_DEADLINES") or "").replace(";", ",").split(","):
            if not item.strip():
                continue
            name, _, value = item.partition("=")
            name = name.strip()
            if name not in hours:
                raise ValidationError(
                    "{name!r} is not an abuse category", "IPAM_ABUSE_DEADLINES", name=name
                )
            try:
                hours[name] = float(value)
            except ValueError:
                raise ValidationError(
                    "{item!r}: give hours, e.g. spam=48", "IPAM_ABUSE_DEADLINES", item=item.strip()
                ) from None
            if hours[name] <= 0:
                raise ValidationError(
                    "{item!r}: hours must be more than 0", "IPAM_ABUSE_DEADLINES", item=item.strip()
                )
        widest = []
        for family, key, default, top in ((4, "IPAM_ABUSE_WIDEST_V4", 16, 32),
                                          (6, "IPAM_ABUSE_WIDEST_V6", 32, 128)):  # fmt: skip
            raw = config.get(key)
            try:
                plen = int(str(raw).strip().lstrip("/")) if raw not in (None, "") else default
            except ValueError:
                raise ValidationError("{raw!r} is not a prefix length", key, raw=raw) from None
            if not 1 <= plen <= top:
                raise ValidationError("must be 1 to {top} (never /0)", key, top=top)
            widest.append((family, plen))
        return cls(window=window, deadlines=tuple(sorted(hours.items())), widest=tuple(widest))


DEFAULT_POLICY = Policy()


KINDS = ("arf", "xarf-mail", "xarf-json", "csv", "shadowserver", "drop")
KEEP = 1000  # reports and rejects an IngestResult lists (counts are always whole)
CHUNK = 2000  # records attributed and written together
READ_AHEAD = True  # PostgreSQL: the next chunk read and attributed while one is written


@dataclass(frozen=True)
class Stored:
    """A report as stored: what callers show back (the row itself stays in the database)."""

    id: int
    prefix: str
    event_at: datetime
    category: AbuseCategory
    holding: str
    source: str


@dataclass
class IngestResult:
    reports: list[Stored] = field(default_factory=list)  # the first KEEP
    rejected: list[RejectedReport] = field(default_factory=list)  # the first KEEP
    stored: int = 0
    rejected_count: int = 0
    duplicates: int = 0
    cases_opened: int = 0

    def _reject(self, row: RejectedReport) -> None:
        self.rejected_count += 1
        if len(self.rejected) < KEEP:
            self.rejected.append(row)


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def reject(session: Session, raw: bytes, source: str, fieldname, reason, at) -> RejectedReport:
    """Keep an input that could not be taken; the same bytes again keep their one row
    (with the latest reason), so re-sending a broken file does not double the store. A
    reason given as a Phrase keeps its words for the reader's language."""
    phrase = reason.as_json() if isinstance(reason, Phrase) else None
    reason = str(reason)
    digest = _sha(raw)
    row = session.scalars(
        select(RejectedReport)
        .where(RejectedReport.sha256 == digest, RejectedReport.status == "rejected")
        .limit(1)
    ).first()
    if row is not None and bytes(row.raw) == raw:
        row.field, row.reason, row.source, row.received_at = fieldname, reason, source, at
        row.phrase = phrase
        return row
    row = RejectedReport(
        sha256=digest, raw=raw, source=source, field=fieldname, reason=reason, received_at=at,
        phrase=phrase,
    )  # fmt: skip
    session.add(row)
    return row


CLOCK_SKEW = timedelta(minutes=10)  # a sender's clock may run this far ahead of ours


def at_the_door(rec: formats.Record, now: datetime, policy: Policy) -> formats.Rejected | None:
    """Sanity before attribution: no event in the future, no prefix broader than allowed."""
    if rec.event_at > now + CLOCK_SKEW:
        return formats.Rejected(
            rec.source, rec.raw, "time",
            Phrase("{event} is in the future (received {now})", event=rec.event_at.isoformat(),
                   now=now.isoformat()),
        )  # fmt: skip
    limit = 1 if rec.source == "drop" else policy.widest_for(rec.block.family)
    if rec.block.prefixlen < limit:
        return formats.Rejected(
            rec.source, rec.raw, "address",
            Phrase("{block} is broader than /{limit}: a complaint names its addresses",
                   block=str(rec.block), limit=limit),
        )  # fmt: skip
    return None


def holders_at(session: Session, block: Block, at: datetime):
    """(allocation, sublease or None) for every holding that meets `block` at `at`."""
    allocs = session.execute(
        select(Allocation).where(overlapping(Allocation, block), current_at(Allocation, at))
    ).scalars()
    out = []
    for a in allocs:
        inner = block if a.block.contains(block) else a.block
        subs = list(
            session.execute(
                select(Sublease).where(
                    Sublease.allocation_id == a.id,
                    overlapping(Sublease, inner),
                    current_at(Sublease, at),
                )
            ).scalars()
        )
        out.extend((a, s) for s in subs)
        if not subs or not any(s.block.contains(inner) for s in subs):
            out.append((a, None))
    return out


def _quarantined(session: Session, block: Block, at: datetime) -> bool:
    return (
        session.execute(
            select(Quarantine.id).where(
                overlapping(Quarantine, block),
                Quarantine.since <= at,
                or_(Quarantine.released_at.is_(None), Quarantine.released_at > at),
            )
        ).first()
        is not None
    )


# A holding a case is about: (allocation id, customer id, sublessee id or None, block).
Holding = tuple[int, int, int | None, Block]


def _holdings(
    session: Session, records: list[formats.Record], known: dict | None = None
) -> list[tuple[str, list[Holding]]]:
    """(holding flag, holdings) per record, at each record's event time.

    Single addresses (nearly every report) are answered in one batch by
    attribution.holders_many (or were already: `known`, by id of the record); a prefix
    is matched against every holder inside.
    """
    out: list = [None] * len(records)
    known = known or {}
    singles = [i for i, r in enumerate(records) if r.block.is_single]
    asked = [i for i in singles if id(records[i]) not in known]
    found = dict(
        zip(
            asked,
            holders_many(session, [(records[i].block, records[i].event_at) for i in asked]),
            strict=True,
        )
    )
    for i in singles:
        h = found[i] if i in found else known[id(records[i])]
        if h.allocation_id is not None:
            out[i] = ("held", [(h.allocation_id, h.customer_id, h.sublessee_id, records[i].block)])
        else:
            out[i] = ("quarantined" if h.status == "quarantined" else "unallocated", [])
    for i, rec in enumerate(records):
        if out[i] is not None:
            continue
        held = []
        for alloc, sub in holders_at(session, rec.block, rec.event_at):
            block = rec.block if alloc.block.contains(rec.block) else alloc.block
            if sub is not None and not sub.block.contains(block):
                block = sub.block
            held.append((alloc.id, alloc.customer_id, sub.sublessee_id if sub else None, block))
        if held:
            out[i] = ("held", held)
        elif _quarantined(session, rec.block, rec.event_at):
            out[i] = ("quarantined", [])
        else:
            out[i] = ("unallocated", [])
    return out


class _Cases:
    """The open cases a chunk of reports may join, loaded once, grouped by key.

    Key: customer, sublessee, category, block. A report joins the newest open
    case of its key whose events lie within the window of its own, else opens one.
    """

    def __init__(self, session: Session, holdings, policy: Policy):
        self.window, self.policy = policy.window, policy
        self.by_key: dict[tuple, list[dict]] = {}
        self.new: list[dict] = []
        self.changed: dict[int, dict] = {}
        by_family: dict[int, set[bytes]] = {}
        for _flag, held in holdings:
            for *_keys, block in held:
                by_family.setdefault(block.family, set()).add(to_bytes(block.first))
        cols = (
            AbuseCase.id, AbuseCase.customer_id, AbuseCase.sublessee_id, AbuseCase.category,
            AbuseCase.family, AbuseCase.first, AbuseCase.prefixlen,
            AbuseCase.first_event_at, AbuseCase.last_event_at, AbuseCase.report_count,
        )  # fmt: skip
        postgres = session.get_bind().dialect.name == "postgresql"
        for family, wanted in by_family.items():
            firsts = sorted(wanted)
            step = 2000 if postgres else 500  # SQLite: bound parameters per statement
            for start in range(0, len(firsts), step):
                part = firsts[start : start + step]
                q = select(*cols).where(
                    AbuseCase.family == family, AbuseCase.state.in_(OPEN_STATES)
                )
                if postgres:
                    # One index probe per address on (family, first), whatever the table's
                    # statistics say: a LATERAL subquery per element of the array, kept
                    # apart by OFFSET 0 (else the planner flattens it into a join). A join or
                    # IN list, planned on stale statistics (a table a batch is filling),
                    # becomes a loop over every open case of the family for every address:
                    # 160 ms a chunk at 16,000 cases, 590 ms at 25,000, growing.
                    found = (
                        func.unnest(cast(part, ARRAY(LargeBinary)))
                        .table_valued("first")
                        .render_derived(name="f")
                    )
                    inner = q.where(AbuseCase.first == found.c.first).offset(0).lateral("c")
                    q = select(*inner.c).select_from(found).join(inner, true())
                else:
                    q = q.where(AbuseCase.first.in_(part))
                rows = session.execute(q)
                for cid, cust, sub, cat, fam, first, plen, fe, le, n in rows:
                    key = (cust, sub, cat, fam, bytes(first), plen)
                    self.by_key.setdefault(key, []).append(
                        {"id": cid, "first_event_at": fe, "last_event_at": le, "report_count": n}
                    )
        for group in self.by_key.values():
            group.sort(key=lambda c: c["id"])

    def place(self, rec: formats.Record, holding: Holding, now: datetime) -> tuple[dict, bool]:
        alloc_id, customer_id, sublessee_id, block = holding
        key = (customer_id, sublessee_id, rec.category, block.family, to_bytes(block.first),
               block.prefixlen)  # fmt: skip
        at, group = rec.event_at, self.by_key.setdefault(key, [])
        for case in reversed(group):
            lo, hi = at - self.window, at + self.window
            if case["last_event_at"] >= lo and case["first_event_at"] <= hi:
                case["report_count"] += 1
                case["first_event_at"] = min(case["first_event_at"], at)
                case["last_event_at"] = max(case["last_event_at"], at)
                if case.get("id") is not None:
                    self.changed[case["id"]] = case
                return case, False
        case = {
            **block.columns(),
            "customer_id": customer_id,
            "sublessee_id": sublessee_id,
            "allocation_id": alloc_id,
            "category": rec.category,
            "state": "open",
            "customer_status": "none",
            "opened_at": now,
            "updated_at": now,
            "first_event_at": at,
            "last_event_at": at,
            "deadline": now + self.policy.deadline(rec.category),
            "report_count": 1,
            "id": None,
        }
        group.append(case)
        self.new.append(case)
        return case, True

    def write(self, session: Session, actor: str, now: datetime) -> None:
        if self.new:
            fresh_ids = reserve_ids(session, "abuse_case", len(self.new))
            for case, cid in zip(self.new, fresh_ids, strict=True):
                case["id"] = cid
            insert_plain(session, AbuseCase.__table__, self.new)
            audit.record_many(
                session,
                actor,
                "abuse_case.open",
                "abuse_case",
                (
                    (
                        c["id"],
                        audit.canonical_object(
                            (  # the audit's canonical form: sorted keys
                                ("category", c["category"].value),
                                ("customer_id", c["customer_id"]),
                                ("prefix", str(Block.of(c["family"], c["first"], c["prefixlen"]))),
                                ("sublessee_id", c["sublessee_id"]),
                            )
                        ),
                    )  # fmt: skip
                    for c in self.new
                ),
            )
        if self.changed:
            session.execute(
                update(AbuseCase),
                [
                    {
                        "id": cid,
                        "report_count": c["report_count"],
                        "first_event_at": c["first_event_at"],
                        "last_event_at": c["last_event_at"],
                        "updated_at": now,
                    }
                    for cid, c in self.changed.items()
                ],
            )
            for obj in list(session.identity_map.values()):
                if isinstance(obj, AbuseCase) and obj.id in self.changed:
                    session.expire(obj)


def store_many(
    session: Session,
    records: list[formats.Record],
    *,
    actor: str,
    now: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    result: IngestResult | None = None,
    holders: dict | None = None,
) -> IngestResult:
    """Keep records (skipping bytes already known), attribute them, open or join their cases.

    `holders`: {id(record): attribution.Holder} already found (_ReadAhead), else asked here.

    One chunk is read and written in a few statements: the duplicates in one
    query, the holders in one batch, the open cases in one query, then the
    reports, cases and links in bulk, with an audit entry for each report and
    each case opened.
    """
    result = result or IngestResult()
    now = now or utcnow()
    kept = []
    for rec in records:  # sanity at the door, whatever the way in
        refused = names.resolve(session, rec) if rec.block is None else None
        refused = refused or at_the_door(rec, now, policy)
        if refused is None:
            kept.append(rec)
        else:
            result._reject(
                reject(session, refused.raw, refused.source, refused.field, refused.reason, now)
            )
    records = kept
    for start in range(0, len(records), CHUNK):
        _store_chunk(session, records[start : start + CHUNK], actor, now, policy, result, holders)
    return result


def _store_chunk(session, records, actor, now, policy, result, holders=None) -> None:
    # Intakes take turns (to commit), so two of them never both store the same
    # complaint or both open a case for the same holder and address.
    lock_named(session, "abuse_intake")
    shas = [_sha(r.raw) for r in records]
    if session.get_bind().dialect.name == "postgresql":  # one array: no statement per size
        seen = AbuseReport.sha256 == any_(cast(shas, ARRAY(String)))
    else:
        seen = AbuseReport.sha256.in_(shas)
    known = set(session.scalars(select(AbuseReport.sha256).where(seen)))
    fresh = []
    for rec, sha in zip(records, shas, strict=True):
        if sha in known:
            result.duplicates += 1
        else:
            known.add(sha)
            fresh.append((rec, sha))
    if not fresh:
        return
    holdings = _holdings(session, [rec for rec, _ in fresh], holders)
    rows = [
        {
            **rec.block.columns(),
            "sha256": sha,
            "raw": rec.raw,
            "source": rec.source,
            "received_at": now,
            "event_at": rec.event_at,
            "category": rec.category,
            "reporter": rec.reporter,
            "description": rec.description,
            "details": rec.details,
            "holding": flag,
        }
        for (rec, sha), (flag, _held) in zip(fresh, holdings, strict=True)
    ]
    ids = reserve_ids(session, "abuse_report", len(rows))
    for row, rid in zip(rows, ids, strict=True):
        row["id"] = rid
    insert_plain(session, AbuseReport.__table__, rows)
    cases = _Cases(session, holdings, policy)
    links = []
    for rid, (rec, _), (_flag, held) in zip(ids, fresh, holdings, strict=True):
        for holding in held:
            case, opened = cases.place(rec, holding, now)
            result.cases_opened += opened
            links.append((rid, case))
    cases.write(session, actor, now)
    if links:
        insert_plain(
            session,
            AbuseReportCase.__table__,
            [{"report_id": rid, "case_id": c["id"]} for rid, c in _unique_links(links)],
        )
    audit.record_many(
        session,
        actor,
        "abuse_report.ingest",
        "abuse_report",
        (
            (
                rid,
                audit.canonical_object(
                    (  # the audit's canonical form: sorted keys
                        ("category", rec.category.value),
                        ("event_at", rec.event_at.isoformat()),
                        ("holding", row["holding"]),
                        ("prefix", str(rec.block)),
                        ("source", rec.source),
                    )
                ),
            )  # fmt: skip
            for rid, (rec, _s), row in zip(ids, fresh, rows, strict=True)
        ),
    )
    result.stored += len(ids)
    room = KEEP - len(result.reports)
    result.reports.extend(
        Stored(rid, str(rec.block), rec.event_at, rec.category, row["holding"], rec.source)
        for rid, (rec, _s), row in list(zip(ids, fresh, rows, strict=True))[: max(room, 0)]
    )


def _unique_links(links):
    seen, out = set(), []
    for rid, case in links:
        if (rid, case["id"]) not in seen:
            seen.add((rid, case["id"]))
            out.append((rid, case))
    return out


def store(session: Session, rec: formats.Record, **kwargs) -> IngestResult:
    """Keep one record (see store_many)."""
    return store_many(session, [rec], **kwargs)


def ingest(
    session: Session,
    raw: bytes,
    *,
    actor: str,
    kind: str | None = None,
    now: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    name: str = "",
) -> IngestResult:
    """Read one input (a mail, a JSON report, a CSV batch or a DROP feed) and keep it.

    An input that cannot be read at all is kept in the rejected store; a batch
    keeps its good records and rejects its bad ones, each with its reason.
    `name` (a file name) tells a Shadowserver report's type.
    """
    return ingest_many(session, [raw], actor=actor, kind=kind, now=now, policy=policy, name=name)


def ingest_many(
    session: Session,
    inputs: Iterable[bytes],
    *,
    actor: str,
    kind: str | None = None,
    now: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    chunk_done: Callable[[], None] | None = None,
    name: str = "",
) -> IngestResult:
    """Ingest many inputs (mails of a maildir, say), storing their records CHUNK at a time.

    Same outcome as ingest() on each in turn, in a few statements per chunk
    instead of a few per mail. The caller's `chunk_done` (ipam.db.chunk_done)
    is called after each chunk, to keep it.
    """
    now = now or utcnow()

    def items():
        for raw in inputs:
            try:
                got, bad = formats.read(raw, now, kind, name=name)
            except formats.FormatError as exc:  # the whole input, byte for byte
                yield formats.Rejected(
                    kind or formats.detect(raw), raw, exc.field, formats.why(exc)
                )
                continue
            except Exception as exc:  # noqa: BLE001 - one input never stops the others
                log.exception("input of %s bytes could not be read", len(raw))
                reason = Phrase(
                    "could not be read ({error}); kept for an engineer", error=type(exc).__name__
                )
                yield formats.Rejected(kind or "unknown", raw, "input", reason)
                continue
            yield from bad
            yield from got

    return _store_items(session, items(), actor, now, policy, chunk_done, IngestResult())


def _store_items(session, items, actor, now, policy, chunk_done, result) -> IngestResult:
    """Store records CHUNK at a time and rejects as they come; the caller keeps each chunk.

    On PostgreSQL, when each chunk is kept on its own (`chunk_done`), the next chunk is
    read and attributed in a thread on a connection of its own while this one writes:
    parsing and attribution overlap the database's work on the chunk before (_ReadAhead).
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    ahead = (
        _ReadAhead(session.get_bind(), items) if postgres and chunk_done and READ_AHEAD else None
    )
    chunks = ahead if ahead is not None else _chunks(items)
    try:
        for rejects, records, holders in chunks:
            with _no_collector():
                for item in rejects:
                    result._reject(
                        reject(session, item.raw, item.source, item.field, item.reason, now)
                    )
                store_many(
                    session, records, actor=actor, now=now, policy=policy, result=result,
                    holders=holders,
                )  # fmt: skip
                if chunk_done is not None and len(records) >= CHUNK:
                    chunk_done()
    finally:
        if ahead is not None:
            ahead.close()
    session.flush()
    return result


@contextmanager
def _no_collector():
    """Writing a chunk makes some 100,000 objects and no cycles: Python's collector would
    walk them again and again for nothing (a third of the time). Parsing, where hostile
    input might make cycles, runs with it on."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _chunks(items):
    """(rejects met on the way, up to CHUNK records, no holders known) until items end."""
    rejects: list[formats.Rejected] = []
    records: list[formats.Record] = []
    for item in items:
        if isinstance(item, formats.Rejected):
            rejects.append(item)
            continue
        records.append(item)
        if len(records) >= CHUNK:
            yield rejects, records, None
            rejects, records = [], []
    yield rejects, records, None


class _ReadAhead:
    """The chunks of `items`, each with the holders of its single addresses found, made one
    chunk ahead in a thread on a connection of its own (a read: who held the address at
    the event's time). An error in the thread is raised in the caller.

    Why: a big CSV batch alternates Python (parsing, attribution's questions, building
    rows) and waiting on PostgreSQL (attribution, COPY, commit); two threads overlap them.
    At most two chunks wait in memory, so memory stays flat in the batch size.
    """

    _END = object()

    def __init__(self, engine, items):
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(engine, items), name="ipam-intake-read", daemon=True
        )
        self._thread.start()

    def _put(self, item) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, engine, items) -> None:
        try:
            with engine.connect() as conn, Session(bind=conn) as reader:
                for rejects, records, _ in _chunks(items):
                    singles = [r for r in records if r.block is not None and r.block.is_single]
                    found = holders_many(reader, [(r.block, r.event_at) for r in singles])
                    reader.rollback()  # one short read transaction per chunk
                    holders = {id(r): h for r, h in zip(singles, found, strict=True)}
                    if not self._put((rejects, records, holders)):
                        return
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            self._put(exc)

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def poll_maildir(
    session: Session,
    path,
    *,
    actor: str,
    chunk_done: Callable[[], None],
    limit: int = 10 * CHUNK,
    policy: Policy = DEFAULT_POLICY,
) -> IngestResult:
    """Ingest the new mails of a maildir and file them as seen (new/ → cur/ with flag S).

    Each chunk is kept (the caller's `chunk_done`, ipam.db.chunk_done) before
    its mails are moved, so a crash between the two only means those mails are
    read again next time and recognised as duplicates. At most `limit` mails a
    call; the scheduler calls again.
    """
    box = Path(path)
    for sub in ("new", "cur", "tmp"):
        if not (box / sub).is_dir():
            raise ValidationError(
                "{box} is not a maildir (no {sub}/ folder)", "maildir", box=box, sub=sub
            )
    names = sorted(p.name for p in (box / "new").iterdir() if not p.name.startswith("."))
    names = names[:limit]
    total = IngestResult()
    for start in range(0, len(names), CHUNK):
        chunk = names[start : start + CHUNK]
        result = ingest_many(session, ((box / "new" / n).read_bytes() for n in chunk), actor=actor)
        chunk_done()
        for n in chunk:
            os.replace(box / "new" / n, box / "cur" / f"{n}:2,S")
        total.stored += result.stored
        total.duplicates += result.duplicates
        total.cases_opened += result.cases_opened
        total.rejected_count += result.rejected_count
        total.reports.extend(result.reports[: KEEP - len(total.reports)])
        total.rejected.extend(result.rejected[: KEEP - len(total.rejected)])
    return total


FORM_FIELDS = ("address", "time", "category", "description", "reporter")


def from_form(
    session: Session,
    data: dict,
    *,
    actor: str,
    now: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> IngestResult:
    """One complaint typed in by an engineer (UI form, JSON API): checked field by field.

    Unlike machine input, a bad form is refused with the field and the reason
    and nothing is written (the person fixes it). The bytes kept are the
    fields as canonical JSON, so the same complaint sent twice is recognised.
    """
    now = now or utcnow()
    unknown = sorted(set(data) - set(FORM_FIELDS))
    if unknown:
        raise ValidationError("is not a field of a complaint", unknown[0])
    text = {k: str(data.get(k) or "").strip() for k in FORM_FIELDS}
    if not text["time"]:
        raise ValidationError("is required: when did it happen (with its time zone)", "time")
    event_at = formats.event_time(text["time"], "time")
    if event_at > now + timedelta(minutes=5):
        raise ValidationError("is in the future", "time")
    rec = formats.Record(
        source="form",
        raw=json.dumps(
            {**text, "time": event_at.isoformat()}, sort_keys=True, ensure_ascii=False
        ).encode(),
        block=formats.reported_block(text["address"], "address"),
        event_at=event_at,
        category=_our_category(text["category"]),
        reporter=text["reporter"][:320],
        description=text["description"][:4000],
        details={"entered_by": actor},
    )
    refused = at_the_door(rec, now, policy)
    if refused is not None:  # a person at the form hears why, and nothing is kept
        raise ValidationError(refused.reason, refused.field)
    return store_many(session, [rec], actor=actor, now=now, policy=policy)


def _our_category(text) -> AbuseCategory:
    """The form offers our categories: another word there is a mistake, not a sender's."""
    if formats.sender_category(text):
        names = ", ".join(c.value for c in AbuseCategory)
        raise ValidationError("{text!r} is not one of: {names}", "category", text=text, names=names)
    return formats.category(text or "", "category")


def from_listings(
    session: Session, listings, *, at: datetime, actor: str, policy: Policy = DEFAULT_POLICY
) -> IngestResult:
    """Blocklist hits raised by the probes, kept as reports of source "probe".

    The bytes kept are the listing itself as canonical JSON with the day it
    was seen, so a listing seen by every run of a day is one report, and a
    listing still there the next day is another (joining the same case).
    """
    records = []
    for x in listings:
        if not getattr(x, "listed", False):
            continue
        block = Block(x.family, x.address, 32 if x.family == 4 else 128)
        fields = {
            "source": "probe",
            "address": str(block),
            "zone": x.zone,
            "codes": list(x.codes),
            "reason": x.reason,
            "day": at.date().isoformat(),
        }
        records.append(
            formats.Record(
                source="probe",
                raw=json.dumps(fields, sort_keys=True, ensure_ascii=False).encode(),
                block=block,
                event_at=at,
                category=AbuseCategory.SPAM,
                reporter=f"blocklist {x.zone}",
                description=f"listed on {x.zone} ({', '.join(x.codes)})"
                + (f": {x.reason}" if x.reason else ""),
                details={"zone": x.zone, "codes": list(x.codes)},
            )
        )
    return store_many(session, records, actor=actor, now=at, policy=policy)


def ingest_stream(
    session: Session,
    stream: BinaryIO,
    *,
    actor: str,
    now: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    chunk_done: Callable[[], None] | None = None,
) -> IngestResult:
    """Ingest a CSV batch of any size from a binary file, CHUNK rows at a time.

    Memory stays flat in the batch size. With the caller's `chunk_done`
    (ipam.db.chunk_done) each chunk is kept on its own, so a crash keeps the
    chunks before it; running the batch again stores only the rest (the
    others are recognised as duplicates).
    """
    now = now or utcnow()
    result = IngestResult()
    head = stream.readline()
    try:
        rows = formats.iter_csv(itertools.chain([head], stream))
        first = next(rows, None)
    except formats.FormatError as exc:
        raw = head + stream.read(formats.MAX_MESSAGE_BYTES)
        result._reject(reject(session, raw, "csv", exc.field, formats.why(exc), now))
        session.flush()
        return result
    items = itertools.chain([first] if first is not None else [], rows)
    return _store_items(session, items, actor, now, policy, chunk_done, result)


def retry_rejected(
    session: Session,
    rejected_id: int,
    *,
    actor: str,
    kind: str | None = None,
    policy: Policy = DEFAULT_POLICY,
):
    """Run a rejected input again (after a fix to the reader, or with the right format).

    Refused again as a whole, the input keeps its one row with the new reason
    (no second copy of its bytes); accepted, the row points at its report.
    """
    row = session.get(RejectedReport, int(rejected_id))
    if row is None or row.status != "rejected":
        raise NotFound(
            "no rejected report {rejected_id!r} waiting", "rejected", rejected_id=rejected_id
        )
    savepoint = session.begin_nested()
    result = ingest(session, bytes(row.raw), actor=actor, kind=kind, policy=policy)
    again = result.rejected[0] if result.rejected_count == 1 and not result.stored else None
    if again is not None and bytes(again.raw) == bytes(row.raw) and not result.duplicates:
        field, reason, source = again.field, again.reason, again.source
        savepoint.rollback()
        row.field, row.reason, row.source = field, reason, source
        audit.record(
            session, actor, "rejected_report.retry", row,
            {"format": kind, "field": field, "reason": reason},
        )  # fmt: skip
        return IngestResult(rejected=[row], rejected_count=1)
    savepoint.commit()
    if result.reports and not result.rejected_count:
        row.status = "accepted"
        row.report_id = result.reports[0].id
        audit.record(
            session, actor, "rejected_report.accept", row,
            {"format": kind, "report_id": row.report_id, "reports": result.stored},
        )  # fmt: skip
    return result


def list_unattributed(
    session: Session, *, holding: str | None = None, window: Window = ALL
) -> tuple[list[AbuseReport], int]:
    """Reports nobody held the address of at the time (unallocated or quarantined space),
    newest first: no case was opened, so this is where they are found."""
    q = select(AbuseReport).where(AbuseReport.holding != Space.HELD)
    if holding:
        value = choice(Space, holding, "holding")
        if value == Space.HELD:
            raise ValidationError("held reports have cases; ask for unallocated or quarantined",
                                  "holding")  # fmt: skip
        q = q.where(AbuseReport.holding == value)
    return fetch(session, q.order_by(AbuseReport.id.desc()), window)


def list_rejected(
    session: Session,
    *,
    status: str | None = "rejected",
    window: Window = ALL,
    field: str | None = None,
) -> tuple[list[RejectedReport], int]:
    """Rejected input, newest first: waiting (default), accepted on retry, or all (None).
    field="domain": complaints naming a URL or domain nobody has registered (names.py)."""
    q = select(RejectedReport).order_by(RejectedReport.id.desc())
    if field:
        q = q.where(RejectedReport.field == field)
    if status:
        q = q.where(RejectedReport.status == choice(RejectedStatus, status, "status"))
    return fetch(session, q, window)
