"""A customer's filing obligations and their deadlines (clauses 1, 2 and 5).

Clause 5: the public-security (PSB) filing is due within 15 days of connection.
Clause 1: a reseller's ISP licence must be valid. Clause 2: a hosting
customer needs an ICP number. Each item says whether it is met, due or overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .models import Customer, CustomerKind

PSB_FILING_DAYS = 15
LICENCE_WARNING_DAYS = 30


@dataclass
class Filing:
    clause: int
    name: str
    state: str  # met | due | overdue | missing
    deadline: date | None
    detail: str


def filings(customer: Customer, today: date) -> list[Filing]:
    """Return the customer's filing items as of `today`."""
    out = []
    if customer.connected_on is not None:
        deadline = customer.connected_on + timedelta(days=PSB_FILING_DAYS)
        if customer.psb_filing_number and customer.psb_filed_on:
            late = customer.psb_filed_on > deadline
            out.append(
                Filing(
                    5,
                    "psb_filing",
                    "met",
                    deadline,
                    f"{customer.psb_filing_number} filed {customer.psb_filed_on}"
                    + (" (late)" if late else ""),
                )
            )
        else:
            state = "overdue" if today > deadline else "due"
            out.append(Filing(5, "psb_filing", state, deadline, "no PSB filing recorded"))
    else:
        out.append(Filing(5, "psb_filing", "missing", None, "no connection date recorded"))
    if customer.kind == CustomerKind.ISP:
        expires = customer.isp_licence_expires
        if not customer.isp_licence_number:
            out.append(Filing(1, "isp_licence", "missing", None, "no ISP licence number"))
        elif expires is None:
            out.append(Filing(1, "isp_licence", "missing", None, "licence expiry not recorded"))
        elif expires < today:
            out.append(Filing(1, "isp_licence", "overdue", expires, "licence expired"))
        elif expires <= today + timedelta(days=LICENCE_WARNING_DAYS):
            out.append(Filing(1, "isp_licence", "due", expires, "licence expires soon"))
        else:
            out.append(Filing(1, "isp_licence", "met", expires, customer.isp_licence_number))
    if customer.kind == CustomerKind.HOSTING:
        state = "met" if customer.icp_number else "missing"
        out.append(Filing(2, "icp_number", state, None, customer.icp_number or "no ICP number"))
    return out
