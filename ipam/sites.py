"""The sites register: services a customer or its sublessee runs (clauses 2, 3, 4 and 6).

A site names its domain and URLs, its ICP number (clause 2), its service
category and the sector approval the category needs (clause 3), whether it
is interactive (forum, bulletin board, blog, chat: clause 4), its admin
accounts (clause 6) and the addresses it is served from, each held by the
customer when registered. Every change appends a SiteRevision, so the
clause 6 report can state the register as it stood at any instant.

Three rules raise findings (kinds site_*), re-checked on every change and by
the daily `check_sites` job: no ICP number; a category that needs approval
without one; an interactive site on an address that is shared with another
site or no longer held by the customer (clause 4: a dedicated, fixed address).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from . import audit, validation
from .addresses import parse_address, to_bytes
from .attribution import holders_many
from .db import utcnow
from .errors import NotFound, Phrase, ValidationError
from .listing import ALL, EVERYONE, Scope, Window, fetch
from .models import Finding, FindingKind, Site, SiteRevision, Sublessee

# Clause 3: these need the sector regulator's approval before the service may run.
NEEDS_APPROVAL = ("news", "publishing", "education", "medical", "drugs", "culture", "broadcasting")
CATEGORIES = ("general", "ecommerce", *NEEDS_APPROVAL)
INTERACTIVE = ("forum", "bbs", "blog", "chat")  # clause 4
FIELDS = (
    "name",
    "domain",
    "urls",
    "icp_number",
    "category",
    "approval_ref",
    "interactive",
    "admin_accounts",
    "addresses",
    "sublessee_id",
)
MAX_ADDRESSES = 64


def snapshot(site: Site) -> dict:
    """The site's register entry as plain JSON values (a revision, an audit entry)."""
    return audit.jsonable(
        {
            "id": site.id,
            "customer_id": site.customer_id,
            **{f: getattr(site, f) for f in FIELDS},
            "valid_from": site.valid_from,
            "valid_to": site.valid_to,
        }
    )


def _urls(value, field: str = "urls") -> list[str]:
    if value in (None, ""):
        return []
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > 50:
        raise ValidationError("must be a list of at most 50 URLs", field)
    out = []
    for i, item in enumerate(items):
        url = validation.line(item, f"{field}[{i}]", 2000)
        if not url.lower().startswith(("http://", "https://")):
            raise ValidationError(
                "{url!r} is not an http:// or https:// URL", f"{field}[{i}]", url=url
            )
        out.append(url)
    return out


def _addresses(value, field: str = "addresses") -> list[str]:
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not items:
        raise ValidationError("is required: the addresses the site is served from", field)
    if not isinstance(items, list) or len(items) > MAX_ADDRESSES:
        raise ValidationError(
            "must be a list of at most {MAX_ADDRESSES} addresses",
            field,
            MAX_ADDRESSES=MAX_ADDRESSES,
        )
    out = []
    for i, item in enumerate(items):
        text = str(parse_address(item, f"{field}[{i}]"))
        if text not in out:
            out.append(text)
    return out


def _accounts(value, field: str = "admin_accounts") -> list[dict]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or len(value) > 50:
        raise ValidationError("must be a list of at most 50 accounts", field)
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValidationError("each entry must be an object with an account", f"{field}[{i}]")
        entry = {"account": validation.line(item.get("account"), f"{field}[{i}].account")}
        if item.get("name"):
            entry["name"] = validation.line(item["name"], f"{field}[{i}].name")
        if item.get("phone"):
            entry["phone"] = validation.phone(item["phone"], f"{field}[{i}].phone")
        out.append(entry)
    return out


def _clean(data: dict, *, partial: bool) -> dict:
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise ValidationError("is not a site field", sorted(unknown)[0])
    checks = {
        "name": lambda v: validation.line(v, "name"),
        "domain": lambda v: (validation.domain_list([v], "domain") if v else [None])[0],
        "urls": _urls,
        "icp_number": lambda v: validation.optional(v, "icp_number", 64),
        "category": lambda v: _choice(v, CATEGORIES, "category"),
        "approval_ref": lambda v: validation.optional(v, "approval_ref", 200),
        "interactive": lambda v: _choice(v, INTERACTIVE, "interactive") if v else None,
        "admin_accounts": _accounts,
        "addresses": _addresses,
        "sublessee_id": lambda v: int(v) if str(v or "").strip().isdigit() else _no_id(v),
    }
    out = {}
    for field, check in checks.items():
        if field in data:
            out[field] = check(data[field])
    if not partial:
        for field in ("name", "domain", "category", "addresses"):
            if out.get(field) in (None, "", []):
                raise ValidationError("is required", field)
    return out


def _no_id(value):
    if value in (None, ""):
        return None
    raise ValidationError("{value!r} is not a sublessee id", "sublessee_id", value=value)


def _choice(value, allowed: tuple, field: str) -> str:
    text = str(value or "").strip().lower()
    if text not in allowed:
        raise ValidationError(
            "{value!r} is not one of: {choices}", field, value=value, choices=", ".join(allowed)
        )
    return text


def _check_holdings(session: Session, customer_id: int, values: dict, at: datetime) -> None:
    """Every address is held by the site's customer now (true information, clause 17); a
    sublessee's site sits on that sublessee's subleased space."""
    sub_id = values.get("sublessee_id")
    if sub_id is not None:
        sub = session.get(Sublessee, sub_id)
        if sub is None or sub.customer_id != customer_id:
            raise NotFound(
                "no sublessee {sub_id!r} of this customer", "sublessee_id", sub_id=sub_id
            )
    answers = holders_many(session, [(a, at) for a in values["addresses"]])
    for i, (address, holder) in enumerate(zip(values["addresses"], answers, strict=True)):
        if holder.customer_id != customer_id:
            raise ValidationError(
                "{address} is not held by this customer; a site is served from its own addresses",
                f"addresses[{i}]",
                address=address,
            )
        if sub_id is not None and holder.sublessee_id != sub_id:
            raise ValidationError(
                "{address} is not sub-leased to this sublessee", f"addresses[{i}]", address=address
            )


def get_site(session: Session, ref, field: str = "site") -> Site:
    site = session.get(Site, int(ref)) if str(ref).strip().isdigit() else None
    if site is None:
        raise NotFound("no site {ref!r}", field, ref=ref)
    return site


def _revise(session: Session, site: Site, at: datetime) -> None:
    session.add(SiteRevision(site_id=site.id, recorded_at=at, snapshot=snapshot(site)))


def add_site(session: Session, customer, data: dict, *, actor: str, at=None) -> Site:
    """Register a site of `customer` (or of one of its sublessees: data["sublessee_id"])."""
    values = _clean(data, partial=False)
    at = validation.instant(at, "at") or utcnow()
    values.setdefault("sublessee_id", None)
    _check_holdings(session, customer.id, values, at)
    values.setdefault("urls", [])
    values.setdefault("admin_accounts", [])
    site = Site(customer_id=customer.id, valid_from=at, updated_at=at, **values)
    session.add(site)
    session.flush()
    _revise(session, site, at)
    audit.record(session, actor, "site.add", site, snapshot(site))
    check_sites(session, _sharing(session, site, []), at=at, actor=actor)
    return site


def check_changes(session: Session, site: Site, changes: dict, at=None) -> dict:
    """The changes, validated as update_site would apply them (a change request is refused
    on submission when it could never apply)."""
    values = _clean(changes, partial=True)
    if "addresses" in values or "sublessee_id" in values:
        merged = {f: getattr(site, f) for f in FIELDS} | values
        _check_holdings(session, site.customer_id, merged, at or utcnow())
    return values


def update_site(session: Session, ref, changes: dict, *, actor: str, at=None) -> Site:
    """Change a site's entry; the old one stays in its revision for its time."""
    site = get_site(session, ref)
    if site.valid_to is not None:
        raise ValidationError("the site is closed; register it again", "site")
    at = validation.instant(at, "at") or utcnow()
    values = check_changes(session, site, changes, at)
    before = snapshot(site)
    for key, value in values.items():
        setattr(site, key, value)
    site.updated_at = at
    session.flush()
    _revise(session, site, at)
    audit.record(session, actor, "site.update", site, {"before": before, "after": snapshot(site)})
    check_sites(session, _sharing(session, site, before.get("addresses") or []), at=at, actor=actor)
    return site


def close_site(session: Session, ref, reason, *, actor: str, at=None) -> Site:
    """The site no longer runs: its interval ends, its findings are resolved."""
    site = get_site(session, ref)
    if site.valid_to is not None:
        raise ValidationError("is closed already", "site")
    reason = validation.required(reason, "reason", 2000)
    at = validation.instant(at, "at") or utcnow()
    site.valid_to = at
    site.updated_at = at
    session.flush()
    _revise(session, site, at)
    audit.record(session, actor, "site.close", site, {"reason": reason})
    check_sites(session, _sharing(session, site, []), at=at, actor=actor)
    return site


def _sharing(session: Session, site: Site, extra: list[str]) -> list[Site]:
    """The site and every current site on one of its addresses (a shared address is a
    problem of both)."""
    mine = set(site.addresses or []) | set(extra)
    out = [site]
    for other in current_sites(session):
        if other.id != site.id and mine & set(other.addresses or []):
            out.append(other)
    return out


def current_sites(session: Session, customer_id: int | None = None) -> list[Site]:
    q = select(Site).where(Site.valid_to.is_(None))
    if customer_id is not None:
        q = q.where(Site.customer_id == customer_id)
    return list(session.scalars(q.order_by(Site.id)))


@dataclass(frozen=True)
class Problem:
    kind: FindingKind
    address: str
    summary: Phrase


def problems(site: Site, shared: set[str], holders: dict) -> list[Problem]:
    """What the rules find wrong with one current site. `shared`: its addresses another
    current site uses too; `holders`: address -> the customer id holding it now."""
    if site.valid_to is not None:
        return []
    first = site.addresses[0]
    out = []
    if not site.icp_number:
        out.append(
            Problem(
                FindingKind.SITE_NO_ICP,
                first,
                Phrase("site {domain} has no ICP number (clause 2)", domain=site.domain),
            )
        )
    if site.category in NEEDS_APPROVAL and not site.approval_ref:
        out.append(
            Problem(
                FindingKind.SITE_NO_APPROVAL,
                first,
                Phrase(
                    "site {domain} ({category}) has no sector approval (clause 3)",
                    domain=site.domain,
                    category=Phrase(site.category),
                ),
            )
        )
    if site.interactive:
        for address in site.addresses:
            if address in shared:
                why = Phrase("shared with another site")
            elif holders.get(address) != site.customer_id:
                why = Phrase("no longer held by the customer")
            else:
                continue
            out.append(
                Problem(
                    FindingKind.SITE_INTERACTIVE_SHARED,
                    address,
                    Phrase(
                        "{kind} site {domain} on {address}: {why}; clause 4 needs a dedicated "
                        "fixed address",
                        kind=Phrase(site.interactive),
                        domain=site.domain,
                        address=address,
                        why=why,
                    ),
                )
            )
    return out


def check_sites(
    session: Session, sites: list[Site] | None = None, *, at=None, actor: str = "sites"
) -> dict:
    """Raise the findings the rules give for `sites` (default: every site) and resolve
    the open ones that no longer hold. Returns counts."""
    at = at or utcnow()
    everyone = current_sites(session)
    sites = everyone if sites is None else sites
    used: dict[str, int] = {}
    for s in everyone:
        for a in s.addresses or []:
            used[a] = used.get(a, 0) + 1
    wanted = sorted({a for s in sites for a in (s.addresses or [])})
    answers = holders_many(session, [(a, at) for a in wanted]) if wanted else []
    holders = {a: h.customer_id for a, h in zip(wanted, answers, strict=True)}
    keys = {f"site:{s.id}:" for s in sites}
    raised, kept = 0, set()
    for site in sites:
        shared = {a for a in (site.addresses or []) if used.get(a, 0) > 1}
        for p in problems(site, shared, holders):
            key = f"site:{site.id}:{p.kind.value}:{p.address}"
            kept.add(key)
            raised += _raise(session, site, p, key, at)
    resolved = 0
    if keys:
        open_ = session.scalars(
            select(Finding).where(or_(*[Finding.open_key.startswith(k) for k in keys]))
        )
        for f in open_:
            if f.open_key not in kept:
                f.status, f.open_key = "resolved", None
                f.resolved_at, f.resolved_by = at, actor
                f.resolution = "the sites register no longer shows the problem"
                resolved += 1
    session.flush()
    return {"sites": len(sites), "raised": raised, "resolved": resolved}


def _raise(session: Session, site: Site, p: Problem, key: str, at: datetime) -> int:
    found = session.scalar(select(Finding).where(Finding.open_key == key))
    if found is not None:
        found.last_seen, found.summary, found.phrase = at, str(p.summary), p.summary.as_json()
        return 0
    block = parse_address(p.address)
    session.add(
        Finding(
            kind=p.kind,
            open_key=key,
            family=block.family,
            first=to_bytes(block.first),
            last=to_bytes(block.last),
            prefixlen=block.prefixlen,
            customer_id=site.customer_id,
            sublessee_id=site.sublessee_id,
            summary=str(p.summary),
            phrase=p.summary.as_json(),
            evidence=[{"site_id": site.id, "domain": site.domain}],
            first_seen=at,
            last_seen=at,
            count=1,
            status="open",
        )
    )
    return 1


@dataclass(frozen=True)
class SiteFilter:
    customer_id: int | None = None
    current_only: bool = True


def list_sites(
    session: Session, flt: SiteFilter = SiteFilter(), scope: Scope = EVERYONE, window: Window = ALL
) -> tuple[list[Site], int]:
    """Sites the scope may see: (rows, total)."""
    q = scope.restrict(select(Site), Site.customer_id)
    if flt.customer_id is not None:
        q = q.where(Site.customer_id == flt.customer_id)
    if flt.current_only:
        q = q.where(Site.valid_to.is_(None))
    return fetch(session, q.order_by(Site.customer_id, Site.domain, Site.id), window)
