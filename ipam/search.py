"""One search box for everything a person may type: an address or prefix, a customer's name
or credit code, a sublessee, a domain, a case or incident number.

Each kind of question is recognised from the text itself and answered with indexed look-ups
(names and domains by substring, at most `limit` of each kind); customer users find only
their own records (the Scope), as everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session

from .addresses import parse_block
from .attribution import attribution
from .errors import IpamError, ValidationError
from .listing import EVERYONE, Scope
from .models import AbuseCase, Customer, Incident, Site, Sublessee

MAX_QUERY = 200
NUMBER = re.compile(r"^(?:#|case\s*|incident\s*|案件\s*|事件\s*)?(\d{1,9})$", re.IGNORECASE)
CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$", re.IGNORECASE)


@dataclass(frozen=True)
class Hit:
    """One answer: what it is, its id (or the address/prefix), and how to show it."""

    kind: str  # address | prefix | customer | sublessee | site | case | incident
    key: str  # the id, or the address or prefix
    title: str
    detail: str = ""
    customer_id: int | None = None
    state: str = ""  # a state word (allocated, subleased, open, …) the caller translates


def search(session: Session, text, scope: Scope = EVERYONE, limit: int = 20) -> list[Hit]:
    """Everything `text` can mean that the scope may see, most specific first."""
    q = " ".join(str(text or "").split())
    if not q:
        raise ValidationError("is required: type an address, a name, a domain or a number", "q")
    if len(q) > MAX_QUERY:
        raise ValidationError("is longer than {MAX_QUERY} characters", "q", MAX_QUERY=MAX_QUERY)
    if "\x00" in q:
        raise ValidationError("must not contain NUL characters", "q")
    hits: list[Hit] = []
    hits += _address(session, q, scope)
    hits += _numbers(session, q, scope)
    hits += _customers(session, q, scope, limit)
    hits += _sublessees(session, q, scope, limit)
    hits += _sites(session, q, scope, limit)
    return hits


def _address(session: Session, q: str, scope: Scope) -> list[Hit]:
    try:
        block = parse_block(q, "q", allow_host_bits=True)
    except IpamError:
        return []
    if not block.is_single:  # a prefix: its map and holders (the provider's view only)
        return [] if scope.customer_id is not None else [Hit("prefix", str(block), str(block))]
    answer = attribution(session, str(block))
    owner = (answer.customer or {}).get("id")
    if scope.customer_id is not None and owner != scope.customer_id:
        return []
    who = (answer.sublessee or {}).get("name") or (answer.customer or {}).get("name") or ""
    return [Hit("address", str(block), str(block), who, owner, answer.status)]


def _numbers(session: Session, q: str, scope: Scope) -> list[Hit]:
    found = NUMBER.match(q)
    if not found:
        return []
    number = int(found.group(1))
    out = []
    case = session.get(AbuseCase, number)
    if case is not None and scope.customer_id in (None, case.customer_id):
        out.append(Hit("case", str(case.id), f"#{case.id}", str(case.category), case.customer_id,
                       str(case.state)))  # fmt: skip
    incident = session.get(Incident, number) if scope.customer_id is None else None
    if incident is not None:
        out.append(Hit("incident", str(incident.id), f"#{incident.id} {incident.title}",
                       str(incident.category), incident.customer_id,
                       str(incident.state)))  # fmt: skip
    return out


def _like(column, q: str):
    return column.contains(q, autoescape=True)


def _customers(session: Session, q: str, scope: Scope, limit: int) -> list[Hit]:
    cond = [_like(Customer.name, q), cast(Customer.domains, String).contains(q, autoescape=True)]
    if CREDIT_CODE.match(q):
        cond.append(Customer.uscc == q.upper())
    stmt = scope.restrict(select(Customer).where(or_(*cond)), Customer.id)
    return [
        Hit("customer", str(c.id), c.name, c.uscc, c.id)
        for c in session.scalars(stmt.order_by(Customer.name).limit(limit))
    ]


def _sublessees(session: Session, q: str, scope: Scope, limit: int) -> list[Hit]:
    cond = [
        _like(Sublessee.name, q),
        _like(Sublessee.contact_person, q),
        cast(Sublessee.domains, String).contains(q, autoescape=True),
    ]
    stmt = scope.restrict(select(Sublessee).where(or_(*cond)), Sublessee.customer_id)
    return [
        Hit("sublessee", str(s.id), s.name, s.customer.name, s.customer_id)
        for s in session.scalars(stmt.order_by(Sublessee.name).limit(limit))
    ]


def _sites(session: Session, q: str, scope: Scope, limit: int) -> list[Hit]:
    cond = [_like(Site.domain, q.lower()), _like(Site.name, q)]
    stmt = scope.restrict(select(Site).where(or_(*cond)), Site.customer_id)
    return [
        Hit("site", str(s.id), s.domain, f"{s.name} · {' '.join(s.addresses)}", s.customer_id)
        for s in session.scalars(
            stmt.where(Site.valid_to.is_(None)).order_by(Site.domain).limit(limit)
        )
    ]
