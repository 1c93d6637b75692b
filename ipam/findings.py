"""Rules over a run's observations, and the findings they raise (clause 19).

Rules, each judged against the ledger at the time of the run:
  unallocated_in_use   an address answers that was never allocated
  quarantined_in_use   an address answers while its block is in quarantine
  reclaimed_in_use     an address answers after its last allocation ended
  allocated_dark       no address of a held block answered for N consecutive runs
  ptr_unregistered     the PTR names a domain of no registered holder (the
                       customer, or the sublessee of that address, at that time)
  ptr_mismatch         the PTR name does not resolve back to the address
  blocklisted          an RFC 5782 blocklist lists the address (error answers
                       such as 127.255.255.254 are not listings)
A repeat updates the open finding (last seen, count, evidence); an engineer
resolves it with a comment; seen again after that, it opens anew.

Observations arrive as plain objects (duck-typed, from probes/): ipam knows
nothing of sockets.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime

from netaddr import IPAddress
from sqlalchemy import Integer, cast, func, insert, select
from sqlalchemy.orm import Session

from . import audit, datacentres, validation
from .abuse.ingest import DEFAULT_POLICY, Policy, from_listings
from .addresses import from_bytes, to_bytes
from .db import utcnow
from .errors import NotFound, Phrase, StateConflict
from .models import (
    Allocation,
    Customer,
    Finding,
    FindingKind,
    ProbeObservation,
    ProbeRun,
    Quarantine,
    Sublease,
    Sublessee,
)

EVIDENCE_KEPT = 10
# A block's in-use finding lists every answering address inside it (up to a /24's worth).
ADDRESSES_KEPT = 256
# Never-allocated space that answers is grouped by these covering blocks.
UNALLOCATED_BLOCK = {4: 24, 6: 64}


class _Spans:
    """Non-overlapping (first, last, item) spans with bisect lookup."""

    def __init__(self, items: Iterable):
        rows = sorted(
            ((from_bytes(i.first), from_bytes(i.last), i) for i in items), key=lambda r: r[0]
        )
        self.starts = [r[0] for r in rows]
        self.rows = rows

    def find(self, value: int):
        i = bisect.bisect_right(self.starts, value) - 1
        if i >= 0 and self.rows[i][1] >= value:
            return self.rows[i][2]
        return None


class _History:
    """Past (ended) allocations, possibly nested: the latest one covering an address."""

    def __init__(self, items: Iterable[Allocation]):
        self.rows = sorted(
            ((from_bytes(a.first), from_bytes(a.last), a) for a in items), key=lambda r: r[0]
        )
        self.starts = [r[0] for r in self.rows]
        self.widest = max((r[1] - r[0] for r in self.rows), default=0)

    def latest(self, value: int) -> Allocation | None:
        best = None
        i = bisect.bisect_right(self.starts, value) - 1
        while i >= 0 and value - self.rows[i][0] <= self.widest:
            first, last, a = self.rows[i]
            if first <= value <= last and (best is None or a.valid_to > best.valid_to):
                best = a
            i -= 1
        return best


def _text(family: int, value: int) -> str:
    return str(IPAddress(value, family))


def _in_range(model, family: int, lo: int, hi: int):
    return (model.family == family, model.first <= to_bytes(hi), model.last >= to_bytes(lo))


class _Ledger:
    """The ledger around the targets of one family, as it stands at `at`."""

    def __init__(self, session: Session, family: int, lo: int, hi: int, at: datetime):
        rng = _in_range(Allocation, family, lo, hi)
        allocs = list(session.execute(select(Allocation).where(*rng)).scalars())
        self.current = _Spans(a for a in allocs if a.valid_to is None and a.valid_from <= at)
        self.current_list = [a for a in allocs if a.valid_to is None and a.valid_from <= at]
        self.past = _History(a for a in allocs if a.valid_to is not None and a.valid_to <= at)
        self.quarantine = _Spans(
            session.execute(
                select(Quarantine).where(
                    *_in_range(Quarantine, family, lo, hi), Quarantine.released_at.is_(None)
                )
            ).scalars()
        )
        self.subleases = _Spans(
            session.execute(
                select(Sublease).where(
                    *_in_range(Sublease, family, lo, hi), Sublease.valid_to.is_(None)
                )
            ).scalars()
        )


def _evidence(obs) -> dict:
    return {
        "address": _text(obs.family, obs.address),
        "method": obs.method,
        "answered": bool(obs.answered),
        "rtt_ms": obs.rtt_ms,
        "detail": obs.detail or "",
        "at": obs.at.isoformat() if hasattr(obs, "at") and obs.at else None,
    }


def _phrase(summary) -> dict | None:
    return summary.as_json() if isinstance(summary, Phrase) else None


def merged(new: list[dict], old: list[dict], per_address: bool) -> list[dict]:
    """The evidence kept: the latest observations; for a block, the latest one per address."""
    if not per_address:
        return (new + old)[:EVIDENCE_KEPT]
    seen = {e.get("address") for e in new}
    kept = new + [e for e in old if e.get("address") not in seen]
    return kept[:ADDRESSES_KEPT]


class _Raised:
    """Findings of one run, keyed like the open ones they may update."""

    def __init__(self):
        self.items: dict[str, dict] = {}

    def add(
        self,
        kind: FindingKind,
        family: int,
        first: int,
        prefixlen: int,
        *,
        summary: str,
        evidence: list[dict],
        customer_id=None,
        sublessee_id=None,
        allocation_id=None,
        pool_id=None,
        per_address=False,
    ) -> None:
        key = f"{kind.value}|{family}|{first:x}|{prefixlen}|{customer_id or '-'}"
        item = self.items.get(key)
        if item:
            item["evidence"] = merged(evidence, item["evidence"], per_address)
            return
        self.items[key] = dict(
            per_address=per_address,
            kind=kind,
            family=family,
            first=first,
            prefixlen=prefixlen,
            summary=summary,
            evidence=merged(evidence, [], per_address),
            customer_id=customer_id,
            sublessee_id=sublessee_id,
            allocation_id=allocation_id,
            pool_id=pool_id,
        )


def record_results(
    session: Session,
    run_id: int,
    observations,
    reverse=(),
    listings=(),
    *,
    at: datetime | None = None,
    abuse_policy: Policy = DEFAULT_POLICY,
    claim: str | None = None,
) -> ProbeRun:
    """Store a run's observations, apply the rules, raise or update findings, close the run.

    A worker passes its `claim` (ipam.datacentres.claim): the run row is locked and the
    claim checked, so a run taken over by another worker is never recorded twice."""
    run = session.get(ProbeRun, run_id, with_for_update=claim is not None)
    if run is None:
        raise NotFound("no probe run {run_id}", "run", run_id=run_id)
    datacentres.holds(session, run, claim)
    if run.status not in ("running", "queued"):
        raise StateConflict(
            "probe run {run_id} is already {status}", "run", run_id=run_id, status=run.status
        )
    at = at or utcnow()
    schedule = run.schedule
    observations, reverse, listings = list(observations), list(reverse), list(listings)
    by_family: dict[int, list] = {}
    for o in observations:
        by_family.setdefault(o.family, []).append(o)
    for r in [*reverse, *listings]:
        by_family.setdefault(r.family, [])
    raised = _Raised()
    answered_total = 0
    obs_rows: list[dict] = []
    for family, items in by_family.items():
        fam_reverse = [r for r in reverse if r.family == family]
        fam_listings = [x for x in listings if x.family == family]
        values = [o.address for o in items] + [r.address for r in fam_reverse]
        values += [x.address for x in fam_listings]
        if not values:
            continue
        ledger = _Ledger(session, family, min(values), max(values), at)
        answered: dict[int, list] = {}
        probed: dict[int, list] = {}
        for o in items:
            probed.setdefault(o.address, []).append(o)
            if o.answered:
                answered.setdefault(o.address, []).append(o)
        answered_total += len(answered)
        # Keep what carries information: every answer, and every probe of held space.
        for o in items:
            if o.answered or ledger.current.find(o.address) or ledger.quarantine.find(o.address):
                obs_rows.append(_obs_row(run.id, o, at))
        _usage_rules(session, raised, family, answered, ledger, schedule)
        _dark_rule(session, raised, family, probed, answered, ledger, run, schedule)
        _dns_rules(session, raised, family, fam_reverse, ledger, at, obs_rows, run.id)
        _blocklist_rule(raised, family, fam_listings, ledger, at, obs_rows, run.id)
    if obs_rows:
        for start in range(0, len(obs_rows), 5000):
            session.execute(insert(ProbeObservation), obs_rows[start : start + 5000])
    new = _upsert(session, raised, at, schedule.id)
    if listings:  # blocklist hits are abuse reports too (clause 11), on the holder's case
        from_listings(session, listings, at=at, actor=f"probe-run:{run.id}", policy=abuse_policy)
    run.status = "done"
    run.finished_at = utcnow()
    run.answered = answered_total
    run.findings_raised = new
    run.stats = {"observations_kept": len(obs_rows), "findings_seen": len(raised.items)}
    session.flush()
    return run


def _obs_row(run_id: int, o, at: datetime) -> dict:
    return {
        "run_id": run_id,
        "family": o.family,
        "address": to_bytes(o.address),
        "method": o.method,
        "answered": bool(o.answered),
        "rtt_ms": o.rtt_ms,
        "detail": o.detail or "",
        "observed_at": getattr(o, "at", None) or at,
    }


def _usage_rules(session, raised: _Raised, family, answered, ledger: _Ledger, schedule) -> None:
    """Space nobody holds that answers: one finding per block, the answering addresses inside.

    The block is the quarantined prefix, the ended allocation, or (never allocated) the
    covering /24 or /64: a used /24 is one finding listing its 256 addresses, not 256.
    """
    groups: dict[tuple, dict] = {}
    for value, obs in answered.items():
        if ledger.current.find(value) is not None:
            continue
        q = ledger.quarantine.find(value)
        past = None if q is not None else ledger.past.latest(value)
        if q is not None:
            key = (FindingKind.QUARANTINED_IN_USE, from_bytes(q.first), q.prefixlen)
        elif past is not None:
            key = (FindingKind.RECLAIMED_IN_USE, from_bytes(past.first), past.prefixlen)
        else:
            plen = UNALLOCATED_BLOCK[family]
            width = _host(family)
            key = (FindingKind.UNALLOCATED_IN_USE, value >> (width - plen) << (width - plen), plen)
        group = groups.setdefault(key, {"quarantine": q, "past": past, "addresses": []})
        group["addresses"].append((value, obs))
    for (kind, first, plen), group in groups.items():
        addresses = sorted(group["addresses"], key=lambda item: item[0])
        ev = [_evidence(o) for _value, obs in addresses for o in obs[:1]]
        shown = ", ".join(_text(family, value) for value, _ in addresses[:3])
        more = len(addresses) - 3
        listed = Phrase("{shown} and {more} more", shown=shown, more=more) if more > 0 else shown
        block = f"{_text(family, first)}/{plen}"
        q, past = group["quarantine"], group["past"]
        if kind == FindingKind.QUARANTINED_IN_USE:
            prev = session.get(Allocation, q.allocation_id) if q.allocation_id else None
            raised.add(
                kind,
                family,
                first,
                plen,
                summary=Phrase(
                    "{listed} answer while {prefix} is in quarantine",
                    listed=listed,
                    prefix=q.prefix,
                ),
                evidence=ev,
                customer_id=prev.customer_id if prev else None,
                allocation_id=q.allocation_id,
                pool_id=q.pool_id,
                per_address=True,
            )
        elif kind == FindingKind.RECLAIMED_IN_USE:
            raised.add(
                kind,
                family,
                first,
                plen,
                summary=Phrase(
                    "{listed} answer after {prefix} was ended ({reason})",
                    listed=listed,
                    prefix=past.prefix,
                    reason=Phrase(past.end_reason.value if past.end_reason else "ended"),
                ),
                evidence=ev,
                customer_id=past.customer_id,
                allocation_id=past.id,
                pool_id=past.pool_id,
                per_address=True,
            )
        else:
            raised.add(
                kind,
                family,
                first,
                plen,
                summary=Phrase(
                    "{listed} answer in {block}, which was never allocated",
                    listed=listed,
                    block=block,
                ),
                evidence=ev,
                pool_id=schedule.pool_id,
                per_address=True,
            )


def _host(family: int) -> int:
    return 32 if family == 4 else 128


def _dark_rule(
    session, raised: _Raised, family, probed, answered, ledger: _Ledger, run, schedule
) -> None:
    """A held block none of whose probed addresses answered, this run and the N-1 before."""
    need = schedule.dark_after
    previous = list(
        session.execute(
            select(ProbeRun.id)
            .where(
                ProbeRun.schedule_id == schedule.id,
                ProbeRun.status == "done",
                ProbeRun.id != run.id,
            )
            .order_by(ProbeRun.id.desc())
            .limit(need - 1)
        ).scalars()
    )
    if len(previous) < need - 1:
        return
    probed_sorted = sorted(probed)
    for alloc in ledger.current_list:
        lo, hi = from_bytes(alloc.first), from_bytes(alloc.last)
        i = bisect.bisect_left(probed_sorted, lo)
        inside = []
        while i < len(probed_sorted) and probed_sorted[i] <= hi:
            inside.append(probed_sorted[i])
            i += 1
        if not inside or any(v in answered for v in inside):
            continue
        if previous:
            rows = session.execute(
                select(
                    ProbeObservation.run_id,
                    func.max(cast(ProbeObservation.answered, Integer)),
                    func.count(),
                )
                .where(
                    ProbeObservation.run_id.in_(previous),
                    ProbeObservation.family == family,
                    ProbeObservation.address >= alloc.first,
                    ProbeObservation.address <= alloc.last,
                )
                .group_by(ProbeObservation.run_id)
            ).all()
            if len(rows) < len(previous) or any(r[1] for r in rows):
                continue
        ev = [_evidence(o) for v in inside[:3] for o in probed[v]]
        raised.add(
            FindingKind.ALLOCATED_DARK,
            family,
            lo,
            alloc.prefixlen,
            summary=Phrase(
                "{prefix} ({n} addresses probed) did not answer in {runs} consecutive run(s)",
                prefix=alloc.prefix,
                n=len(inside),
                runs=need,
            ),
            evidence=ev,
            customer_id=alloc.customer_id,
            allocation_id=alloc.id,
            pool_id=alloc.pool_id,
        )


def _registered(name: str, domains: Iterable[str]) -> bool:
    return any(name == d or name.endswith("." + d) for d in domains)


def _dns_rules(
    session, raised: _Raised, family, results, ledger: _Ledger, at, obs_rows, run_id
) -> None:
    for r in results:
        addr = _text(family, r.address)
        detail = " ".join(r.ptr) if r.ptr else (r.error or "no PTR")
        if r.ptr:
            fwd = ", ".join(_text(family, v) for v in r.forward) or "nothing"
            detail += f" -> {fwd}"
        row = {
            "run_id": run_id,
            "family": family,
            "address": to_bytes(r.address),
            "method": "ptr",
            "answered": bool(r.ptr),
            "rtt_ms": None,
            "detail": detail,
            "observed_at": at,
        }
        alloc = ledger.current.find(r.address)
        if alloc is None or not r.ptr:
            if r.ptr:
                obs_rows.append(row)
            continue
        obs_rows.append(row)
        ev = [
            {
                "address": addr,
                "method": "ptr",
                "answered": True,
                "rtt_ms": None,
                "detail": detail,
                "at": at.isoformat(),
            }
        ]
        customer = session.get(Customer, alloc.customer_id)
        domains = list(customer.domains or [])
        sub = ledger.subleases.find(r.address)
        sublessee = session.get(Sublessee, sub.sublessee_id) if sub else None
        if sublessee:
            domains += list(sublessee.domains or [])
        who = dict(
            customer_id=alloc.customer_id,
            allocation_id=alloc.id,
            pool_id=alloc.pool_id,
            sublessee_id=sublessee.id if sublessee else None,
        )
        if not any(_registered(n, domains) for n in r.ptr):
            holders = customer.name + (f" / {sublessee.name}" if sublessee else "")
            raised.add(
                FindingKind.PTR_UNREGISTERED,
                family,
                r.address,
                _host(family),
                summary=Phrase(
                    "{address} PTR {ptr} is no domain registered by {holders}",
                    address=addr,
                    ptr=r.ptr[0],
                    holders=holders,
                ),
                evidence=ev,
                **who,
            )
        if r.confirmed is False:
            raised.add(
                FindingKind.PTR_MISMATCH,
                family,
                r.address,
                _host(family),
                summary=Phrase(
                    "{address} PTR {ptr} resolves to {forward}",
                    address=addr,
                    ptr=r.ptr[0],
                    forward=", ".join(_text(family, v) for v in r.forward) or Phrase("nothing"),
                ),
                evidence=ev,
                **who,
            )


def _blocklist_rule(
    raised: _Raised, family, listings, ledger: _Ledger, at, obs_rows, run_id
) -> None:
    for x in listings:
        if not x.listed and not x.error:
            continue
        addr = _text(family, x.address)
        detail = (
            f"{x.zone}: " + (", ".join(x.codes) + (f" {x.reason}" if x.reason else ""))
            if x.listed
            else f"{x.zone}: {x.error}"
        )
        obs_rows.append(
            {
                "run_id": run_id,
                "family": family,
                "address": to_bytes(x.address),
                "method": f"dnsbl:{x.zone}"[:32],
                "answered": x.listed,
                "rtt_ms": None,
                "detail": detail,
                "observed_at": at,
            }
        )
        if not x.listed:
            continue
        alloc = ledger.current.find(x.address)
        sub = ledger.subleases.find(x.address)
        raised.add(
            FindingKind.BLOCKLISTED,
            family,
            x.address,
            _host(family),
            summary=(
                Phrase(
                    "{address} is listed on {zone} ({codes}): {reason}",
                    address=addr,
                    zone=x.zone,
                    codes=", ".join(x.codes),
                    reason=x.reason,
                )
                if x.reason
                else Phrase(
                    "{address} is listed on {zone} ({codes})",
                    address=addr,
                    zone=x.zone,
                    codes=", ".join(x.codes),
                )
            ),
            evidence=[
                {
                    "address": addr,
                    "method": f"dnsbl:{x.zone}",
                    "answered": True,
                    "rtt_ms": None,
                    "detail": detail,
                    "at": at.isoformat(),
                }
            ],
            customer_id=alloc.customer_id if alloc else None,
            allocation_id=alloc.id if alloc else None,
            pool_id=alloc.pool_id if alloc else None,
            sublessee_id=sub.sublessee_id if sub else None,
        )


def _upsert(session: Session, raised: _Raised, at: datetime, schedule_id: int) -> int:
    """Update the open findings these repeat; open the rest. Returns how many are new."""
    keys = list(raised.items)
    existing: dict[str, Finding] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for f in session.execute(select(Finding).where(Finding.open_key.in_(chunk))).scalars():
            existing[f.open_key] = f
    new = 0
    for key, item in raised.items.items():
        f = existing.get(key)
        if f is not None:
            f.last_seen = at
            f.count += 1
            f.evidence = merged(item["evidence"], list(f.evidence or []), item["per_address"])
            f.summary, f.phrase = str(item["summary"]), _phrase(item["summary"])
            continue
        family, first, plen = item["family"], item["first"], item["prefixlen"]
        width = 32 if family == 4 else 128
        last = first | ((1 << (width - plen)) - 1)
        session.add(
            Finding(
                kind=item["kind"],
                open_key=key,
                family=family,
                first=to_bytes(first),
                last=to_bytes(last),
                prefixlen=plen,
                pool_id=item["pool_id"],
                customer_id=item["customer_id"],
                sublessee_id=item["sublessee_id"],
                allocation_id=item["allocation_id"],
                schedule_id=schedule_id,
                summary=str(item["summary"]),
                phrase=_phrase(item["summary"]),
                evidence=item["evidence"],
                first_seen=at,
                last_seen=at,
                count=1,
                status="open",
            )
        )
        new += 1
    session.flush()
    return new


# --------------------------------------------------------------------------- findings


def get_finding(session: Session, ref) -> Finding:
    f = session.get(Finding, int(ref)) if str(ref).strip().isdigit() else None
    if f is None:
        raise NotFound("no finding {ref!r}", "finding", ref=ref)
    return f


def resolve_finding(session: Session, ref, comment, *, actor: str) -> Finding:
    """An engineer closes a finding with a comment; seen again, it opens anew."""
    f = get_finding(session, ref)
    text = validation.required(comment, "comment", 2000)
    if f.status != "open":
        raise StateConflict("finding {id} is already resolved", "finding", id=f.id)
    f.status = "resolved"
    f.open_key = None
    f.resolved_at = utcnow()
    f.resolved_by = actor
    f.resolution = text
    session.flush()
    audit.record(
        session,
        actor,
        "finding.resolve",
        f,
        {"kind": f.kind.value, "prefix": f.prefix, "comment": text},
    )
    return f


def list_findings(
    session: Session,
    *,
    status=None,
    kind=None,
    customer_id=None,
    pool_id=None,
    limit: int = 50,
    offset: int = 0,
):
    q = select(Finding)
    if status:
        q = q.where(Finding.status == status)
    if kind:
        q = q.where(Finding.kind == validation.choice(FindingKind, kind, "kind"))
    if customer_id is not None:
        q = q.where(Finding.customer_id == int(customer_id))
    if pool_id is not None:
        q = q.where(Finding.pool_id == int(pool_id))
    total = session.execute(select(func.count()).select_from(q.subquery())).scalar()
    rows = session.execute(
        q.order_by(Finding.last_seen.desc(), Finding.id.desc()).limit(limit).offset(offset)
    ).scalars()
    return list(rows), total


def raised_by_run(session: Session, run) -> list[Finding]:
    """Findings a run opened: its schedule's, first seen since the run started."""
    if run.started_at is None:
        return []
    return list(
        session.scalars(
            select(Finding)
            .where(Finding.schedule_id == run.schedule_id, Finding.first_seen >= run.started_at)
            .order_by(Finding.id)
        )
    )


def open_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Finding.kind, func.count()).where(Finding.status == "open").group_by(Finding.kind)
    ).all()
    return {k.value: n for k, n in rows}
