"""The address map (ipam/addressmap.py) against a known ledger."""

from ipam import addressmap, allocation, leasing
from tests import factories


def test_cells_count_each_state(session):
    pool = factories.pool(session, "198.18.0.0/16")
    cust = factories.customer(session)
    big = allocation.allocate(session, pool, cust, prefix="198.18.0.0/23", actor="t")
    allocation.allocate(session, pool, cust, prefix="198.18.2.5", actor="t")
    sub = factories.sublessee(session, cust)
    leasing.sublease(session, big, sub, prefix="198.18.1.0/26", actor="t")
    ended = allocation.allocate(session, pool, cust, prefix="198.18.3.0/30", actor="t")
    allocation.end_allocation(session, ended, actor="t", quarantine_days=30)

    amap = addressmap.address_map(session, "198.18.0.0/16")
    assert amap.cell_prefixlen == 26 and len(amap.cells) == 1024
    assert amap.totals() == {"size": 65536, "allocated": 513, "subleased": 64, "quarantined": 4}
    by_prefix = {str(c.block): c for c in amap.cells}
    assert by_prefix["198.18.0.0/26"].state == "allocated"
    assert by_prefix["198.18.1.0/26"].state == "subleased"
    assert by_prefix["198.18.2.0/26"].allocated == 1
    assert by_prefix["198.18.2.0/26"].state == "free"
    assert by_prefix["198.18.3.0/26"].quarantined == 4

    small = addressmap.address_map(session, "198.18.2.0/24")
    assert small.cell_prefixlen == 32 and len(small.cells) == 256
    assert [str(c.block) for c in small.cells if c.state == "allocated"] == ["198.18.2.5"]


def test_ipv6_map_is_bounded(session):
    pool = factories.pool(session, "2001:db8::/32")
    cust = factories.customer(session)
    allocation.allocate(session, pool, cust, prefixlen=48, actor="t")
    amap = addressmap.address_map(session, "2001:db8::/32")
    assert len(amap.cells) == 1024 and amap.cell_prefixlen == 42
    assert amap.totals()["allocated"] == 1 << 80


def test_a_map_inside_a_larger_holding_sees_it(session):
    """A holding that contains the whole prefix starts below it: found by its covering key."""
    pool = factories.pool(session, "198.18.0.0/16")
    cust = factories.customer(session)
    big = allocation.allocate(session, pool, cust, prefix="198.18.4.0/22", actor="t")
    sub = factories.sublessee(session, cust)
    leasing.sublease(session, big, sub, prefix="198.18.6.0/24", actor="t")
    allocation.allocate(session, pool, cust, prefix="198.18.3.255", actor="t")  # just below
    inner = addressmap.address_map(session, "198.18.6.64/26")
    assert inner.totals() == {"size": 64, "allocated": 64, "subleased": 64, "quarantined": 0}
    assert {c.state for c in inner.cells} == {"subleased"}
    edge = addressmap.address_map(session, "198.18.4.0/24")
    assert edge.totals()["allocated"] == 256 and edge.totals()["subleased"] == 0
