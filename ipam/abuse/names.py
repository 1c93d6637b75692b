"""Complaints that name only a URL or a domain: found through the sites register, then the
customers' and sublessees' registered domains, to the holder at the event's time.

A site served from an address gives that address (as the register stood at the event).
A registered domain gives its holder's block when the holder held exactly one then; a
holder of several, or a name nobody registered, is refused with the reason and kept in the
rejected store, to run again (retry) once the register knows the name.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from ..addresses import Block, parse_address
from ..errors import Phrase
from ..lookup import current_at
from ..models import Allocation, Customer, Site, SiteRevision, Sublease, Sublessee
from . import formats


def candidates(host: str) -> list[str]:
    """The host and every parent domain of two labels or more: a.b.example, b.example."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def _site_block(session: Session, names: list[str], at: datetime) -> tuple[Block, str] | None:
    """The address of the site serving the name at `at`; else of one registered since (the
    register learned of it later: its address is still where to look, and the holder is
    then judged at `at` like any address)."""
    longest = (func.length(Site.domain).desc(), Site.id)
    site = session.scalars(
        select(Site).where(Site.domain.in_(names), current_at(Site, at)).order_by(*longest).limit(1)
    ).first()
    later = ""
    if site is None:
        site = session.scalars(
            select(Site)
            .where(Site.domain.in_(names), Site.valid_from > at)
            .order_by(Site.valid_from, *longest)
            .limit(1)
        ).first()
        later = ", registered after the event"
    if site is None:
        return None
    snap = session.scalars(
        select(SiteRevision.snapshot)
        .where(SiteRevision.site_id == site.id, SiteRevision.recorded_at <= at)
        .order_by(SiteRevision.recorded_at.desc(), SiteRevision.id.desc())
        .limit(1)
    ).first()
    addresses = (snap or {}).get("addresses") or site.addresses
    return parse_address(addresses[0]), f"site {site.id} ({site.domain}){later}"


def _registered(model, names: list[str]):
    text = cast(model.domains, String)
    return or_(*[text.contains(f'"{n}"', autoescape=True) for n in names])


def _holder_block(session: Session, names: list[str], at: datetime):
    """(block, via) or (None, reason) from the registered domains; None if nobody has them."""
    sub = session.scalars(select(Sublessee).where(_registered(Sublessee, names)).limit(1)).first()
    if sub is not None:
        held = session.scalars(
            select(Sublease).where(Sublease.sublessee_id == sub.id, current_at(Sublease, at))
        ).all()
        return _one(held, Phrase("sublessee {id} ({name})", id=sub.id, name=sub.name), at)
    cust = session.scalars(select(Customer).where(_registered(Customer, names)).limit(1)).first()
    if cust is not None:
        held = session.scalars(
            select(Allocation).where(Allocation.customer_id == cust.id, current_at(Allocation, at))
        ).all()
        return _one(held, Phrase("customer {id} ({name})", id=cust.id, name=cust.name), at)
    return None


def _one(held, who: Phrase, at: datetime):
    if len(held) == 1:  # `via` goes into the report's details (JSON): plain text
        return held[0].block, f"the registered domains of {who}"
    if not held:
        return None, Phrase(
            "is registered by {who}, which held no address at {at}", who=who, at=at.isoformat()
        )
    return None, Phrase(
        "is registered by {who}, which held {n} blocks at {at}: the report must name the "
        "address, or the sites register the site",
        who=who,
        n=len(held),
        at=at.isoformat(),
    )


def resolve(session: Session, rec: formats.Record) -> formats.Rejected | None:
    """Give a URL- or domain-only record its block (and say how), or the reason it has none."""
    host = rec.details.get("domain", "")
    names = candidates(host)
    found = _site_block(session, names, rec.event_at)
    if found is None:
        found = _holder_block(session, names, rec.event_at)
    if found is None:
        return formats.Rejected(
            rec.source, rec.raw, "domain",
            Phrase("{host} is in no site of the register and no customer's or sublessee's "
                   "registered domains: register it, then run the report again", host=host),
        )  # fmt: skip
    block, via = found
    if block is None:
        return formats.Rejected(
            rec.source, rec.raw, "domain", Phrase("{host} {why}", host=host, why=via)
        )
    rec.block = block
    rec.details = {**rec.details, "resolved_via": via}
    return None
