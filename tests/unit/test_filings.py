"""Filing deadlines (ipam/filings.py): clause 5's 15 days, clause 1's licence, clause 2's ICP."""

from datetime import date

from ipam.filings import filings
from ipam.models import Customer, CustomerKind


def customer(**kw) -> Customer:
    base = {"name": "x", "uscc": "x", "kind": CustomerKind.HOSTING, "icp_number": "京ICP备1号"}
    return Customer(**(base | kw))


def states(c: Customer, today: date) -> dict:
    return {f.name: f.state for f in filings(c, today)}


def test_psb_filing_due_within_15_days_then_overdue():
    c = customer(connected_on=date(2026, 11, 1))
    assert states(c, date(2026, 11, 16))["psb_filing"] == "due"
    assert states(c, date(2026, 11, 17))["psb_filing"] == "overdue"
    c.psb_filing_number, c.psb_filed_on = "11010502000001", date(2026, 11, 10)
    assert states(c, date(2026, 12, 30))["psb_filing"] == "met"


def test_reseller_licence_and_hosting_icp():
    isp = customer(
        kind=CustomerKind.ISP,
        isp_licence_number="B1-2020",
        isp_licence_expires=date(2026, 12, 15),
        connected_on=date(2020, 1, 1),
    )
    assert states(isp, date(2026, 11, 30))["isp_licence"] == "due"
    assert states(isp, date(2026, 12, 16))["isp_licence"] == "overdue"
    assert states(isp, date(2026, 1, 1))["isp_licence"] == "met"
    assert states(customer(icp_number=None), date(2026, 1, 1))["icp_number"] == "missing"
