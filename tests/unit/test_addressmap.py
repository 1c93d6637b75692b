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

    amap = addressmap.address_map(session, "198.18.0.0/16", tally=False)
    assert amap.cell_prefixlen == 26 and len(amap.cells) == 1024
    drawn = addressmap.address_map(session, "198.18.0.0/16")  # from the counts: /24 cells
    assert drawn.cell_prefixlen == 24 and drawn.totals() == amap.totals()
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


def _cells(amap) -> list[tuple]:
    return [(str(c.block), c.allocated, c.subleased, c.quarantined) for c in amap.cells]


def test_the_map_of_a_large_prefix_from_the_tally_equals_reading_every_holding(session):
    """Triggers keep per-/16 and per-/20 counts (migration 0013) through every change: a
    random history of allocations of many sizes, subleases, ends, quarantine and its
    release; the /8-sized maps drawn from the counts equal those from every holding."""
    import random
    from datetime import timedelta

    from ipam import reclamation
    from ipam.db import utcnow
    from ipam.errors import IpamError
    from ipam.models import Quarantine

    rng = random.Random(17)
    pool = factories.pool(session, "198.16.0.0/14")  # lab space only: 198.16-19 in the pool
    cust = factories.customer(session)
    sub = factories.sublessee(session, cust)
    held = []
    for step in range(400):
        move = rng.random()
        if move < 0.55 or not held:
            plen = rng.choice([32, 32, 32, 30, 28, 25, 24, 23, 22, 20, 19, 18, 16, 15])
            try:
                with session.begin_nested():
                    held.append(allocation.allocate(session, pool, cust, prefixlen=plen, actor="t"))
            except IpamError:  # the pool may be too full for this size
                pass
        elif move < 0.7:
            a = rng.choice(held)
            if a.prefixlen < 32:
                try:
                    with session.begin_nested():
                        leasing.sublease(
                            session, a, sub, prefixlen=min(32, a.prefixlen + 2), actor="t"
                        )
                except IpamError:  # no room left in it
                    pass
        else:
            a = held.pop(rng.randrange(len(held)))
            allocation.end_allocation(session, a, actor="t", quarantine_days=rng.choice([0, 30]))
        if step % 100 == 99:  # some quarantine cools down and goes back to free space
            session.flush()
            for q in session.query(Quarantine).filter(Quarantine.released_at.is_(None)):
                q.since = q.until = utcnow() - timedelta(days=1)
            reclamation.release_quarantine(session, actor="t")
    session.flush()
    for prefix in (
        "198.16.0.0/14", "198.18.0.0/15", "198.0.0.0/8", "192.0.0.0/4", "198.19.0.0/16",
        "198.18.128.0/17",
    ):  # fmt: skip
        drawn = addressmap.address_map(session, prefix)
        read = addressmap.address_map(session, prefix, max_cells=len(drawn.cells), tally=False)
        assert drawn.cell_prefixlen == read.cell_prefixlen, prefix
        assert _cells(drawn) == _cells(read), prefix
    assert addressmap.address_map(session, "198.0.0.0/8").cell_prefixlen == 18  # /20 counts
    assert addressmap.address_map(session, "192.0.0.0/4").cell_prefixlen == 14  # /16 counts
    assert addressmap.address_map(session, "198.16.0.0/14").cell_prefixlen == 24  # /24 counts
    assert addressmap.address_map(session, "198.19.0.0/16").cell_prefixlen == 24  # 256 cells
    assert addressmap.address_map(session, "198.19.0.0/17").cell_prefixlen == 27  # read
