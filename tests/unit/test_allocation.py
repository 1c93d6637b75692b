"""Allocation, ending, quarantine and pools, on both back-ends."""

import pytest
from sqlalchemy import select

from ipam import allocation, freespace, pools, reclamation
from ipam.errors import AddressConflict, NotFound, PoolExhausted, StateConflict, ValidationError
from ipam.models import Allocation, CustomerStatus, FreeBlock, Quarantine
from tests import factories as f


def test_next_free_address_and_prefix(session):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    a1 = allocation.allocate(session, pool, cust, actor="t")
    a2 = allocation.allocate(session, pool, cust, actor="t")
    assert (a1.prefix, a2.prefix) == ("198.18.0.0", "198.18.0.1")
    net = allocation.allocate(session, pool, cust, prefixlen=29, actor="t")
    assert net.prefix == "198.18.0.8/29"  # aligned, after the two singles
    a3 = allocation.allocate(session, pool, cust, actor="t")
    assert a3.prefix == "198.18.0.2"  # best fit: the small hole first
    session.commit()
    u = pools.utilization(session, pool)
    assert (u.allocated, u.free, u.size) == (11, 245, 256)


def test_specific_allocation_and_overlap(session, unchanged):
    pool = f.pool(session, "198.18.0.0/24")
    a, b = f.customer(session), f.customer(session)
    allocation.allocate(session, pool, a, prefix="198.18.0.64/26", actor="t")
    session.commit()
    with unchanged(), pytest.raises(AddressConflict) as err:
        allocation.allocate(session, pool, b, prefix="198.18.0.70", actor="t")
    assert err.value.field == "prefix" and "198.18.0.64/26" in err.value.message
    assert a.name in err.value.message
    with unchanged(), pytest.raises(AddressConflict):
        allocation.allocate(session, pool, b, prefix="198.18.0.0/25", actor="t")


@pytest.mark.parametrize(
    "prefix,field,text",
    [
        ("198.18.0.5/24", "prefix", "did you mean 198.18.0.0/24"),
        ("198.18.1.0/28", "prefix", "outside pool"),
        ("2001:db8::/64", "prefix", "IPv6 but pool"),
        ("not-an-ip", "prefix", "not a valid"),
    ],
)
def test_bad_specific_prefix(session, unchanged, prefix, field, text):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    with unchanged(), pytest.raises(ValidationError) as err:
        allocation.allocate(session, pool, cust, prefix=prefix, actor="t")
    assert err.value.field == field and text in err.value.message


def test_bad_prefix_length(session, unchanged):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    for plen, text in (
        (33, "not a valid IPv4 prefix length"),
        (16, "larger than pool"),
        ("x", "not a prefix length"),
    ):
        with unchanged(), pytest.raises(ValidationError) as err:
            allocation.allocate(session, pool, cust, prefixlen=plen, actor="t")
        assert err.value.field == "prefixlen" and text in err.value.message


def test_pool_exhausted_is_clean(session, unchanged):
    pool = f.pool(session, "198.18.0.0/30")
    cust = f.customer(session)
    for _ in range(4):
        allocation.allocate(session, pool, cust, actor="t")
    with unchanged(), pytest.raises(PoolExhausted) as err:
        allocation.allocate(session, pool, cust, actor="t")
    assert err.value.field == "prefixlen" and err.value.status == 409


def test_ipv6_next_free_64_in_32_and_48_in_29(session):
    p29 = f.pool(session, "2001:db8::/29")
    p32 = f.pool(session, "2001:db8::/32")  # a child: carved out of the /29
    assert p32.parent_id == p29.id
    cust = f.customer(session)
    got = [
        allocation.allocate(session, p32, cust, prefixlen=64, actor="t").prefix for _ in range(3)
    ]
    assert got == ["2001:db8::/64", "2001:db8:0:1::/64", "2001:db8:0:2::/64"]
    big = allocation.allocate(session, p29, cust, prefixlen=48, actor="t")
    assert big.prefix == "2001:db9::/48"


def test_ipv4_mapped_input_is_not_stored_twice(session, unchanged):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    allocation.allocate(session, pool, cust, prefix="198.18.0.9", actor="t")
    session.commit()
    with unchanged(), pytest.raises(AddressConflict):
        allocation.allocate(session, pool, cust, prefix="::ffff:198.18.0.9", actor="t")


def test_end_goes_to_quarantine_then_back(session):
    pool = f.pool(session, "198.18.0.0/30")
    cust = f.customer(session)
    allocs = [allocation.allocate(session, pool, cust, actor="t") for _ in range(4)]
    allocation.end_allocation(session, allocs[1], actor="t", quarantine_days=30)
    with pytest.raises(PoolExhausted):
        allocation.allocate(session, pool, cust, actor="t")
    with pytest.raises(AddressConflict, match="quarantined"):
        allocation.allocate(session, pool, cust, prefix="198.18.0.1", actor="t")
    released = reclamation.release_quarantine(session, actor="t")
    assert released == []  # not due yet
    with pytest.raises(NotFound) as err:
        reclamation.release_quarantine(session, actor="t", quarantine_id=1_000_000)
    assert err.value.field == "quarantine_id"
    q = reclamation.quarantined(session)[0]
    with pytest.raises(ValidationError):  # early release needs a reason
        reclamation.release_quarantine(session, actor="t", quarantine_id=q.id)
    reclamation.release_quarantine(
        session, actor="t", quarantine_id=q.id, early_reason="customer returned it clean"
    )
    assert allocation.allocate(session, pool, cust, actor="t").prefix == "198.18.0.1"


def test_end_twice_and_end_before_start(session, unchanged):
    pool = f.pool(session, "198.18.0.0/30")
    cust = f.customer(session)
    a = allocation.allocate(session, pool, cust, actor="t", at="2026-01-01T00:00:00Z")
    session.commit()
    with unchanged(), pytest.raises(ValidationError) as err:
        allocation.end_allocation(session, a, actor="t", at="2025-12-31T00:00:00Z")
    assert err.value.field == "valid_to"
    allocation.end_allocation(session, a, actor="t", quarantine_days=0)
    session.commit()
    with unchanged(), pytest.raises(StateConflict):
        allocation.end_allocation(session, a, actor="t")


def test_buddies_merge_back(session):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    allocs = [allocation.allocate(session, pool, cust, actor="t") for _ in range(16)]
    for a in allocs:
        allocation.end_allocation(session, a, actor="t", quarantine_days=0)
    blocks = session.execute(select(FreeBlock).where(FreeBlock.pool_id == pool.id)).scalars()
    assert [b.prefix for b in blocks] == ["198.18.0.0/24"]


def test_nested_pools_carve_parent_space(session, unchanged):
    agg = f.pool(session, "198.18.0.0/15", "aggregate")
    child = f.pool(session, "198.18.0.0/16", "dc1")
    assert child.parent_id == agg.id
    cust = f.customer(session)
    a = allocation.allocate(session, agg, cust, prefixlen=24, actor="t")
    assert a.prefix == "198.19.0.0/24"  # the child's space is not the parent's to give
    session.commit()
    with unchanged(), pytest.raises(AddressConflict, match="child pool"):
        allocation.allocate(session, agg, cust, prefix="198.18.5.0/24", actor="t")
    with unchanged(), pytest.raises(AddressConflict, match="not free"):
        f.pool(session, "198.19.0.0/20", "overlaps allocation")
    with unchanged(), pytest.raises(AddressConflict, match="already"):
        f.pool(session, "198.18.0.0/16", "again")
    with unchanged(), pytest.raises(AddressConflict, match="contain the existing"):
        f.pool(session, "198.16.0.0/14", "above")
    assert pools.utilization(session, agg).child_pools == 65536


def test_exit_ends_everything_and_quarantines(session):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    a = allocation.allocate(session, pool, cust, prefixlen=28, actor="t")
    ended = reclamation.customer_exit(session, cust, actor="t", quarantine_days=7)
    assert [x.id for x in ended] == [a.id]
    assert cust.status == CustomerStatus.EXITED and a.end_reason.value == "exit"
    q = reclamation.quarantined(session)
    assert [x.prefix for x in q] == ["198.18.0.0/28"]
    assert (q[0].until - q[0].since).days == 7
    with pytest.raises(StateConflict):
        allocation.allocate(session, pool, cust, actor="t")
    with pytest.raises(StateConflict):
        reclamation.customer_exit(session, cust, actor="t")


def test_reclaim_needs_a_reason_and_records_it(session, unchanged):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    a = allocation.allocate(session, pool, cust, prefixlen=28, actor="t")
    session.commit()
    with unchanged(), pytest.raises(ValidationError) as err:
        reclamation.reclaim(session, cust, reason=" ", actor="t")
    assert err.value.field == "reason"
    reclamation.reclaim(session, cust, reason="clause 11: spam", actor="t")
    session.commit()
    row = session.get(Allocation, a.id)
    assert row.end_reason.value == "reclaimed" and row.end_note == "clause 11: spam"
    assert freespace.free_size(session, pool.id) == 256 - 16


def test_future_time_refused(session, unchanged):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    with unchanged(), pytest.raises(ValidationError) as err:
        allocation.allocate(session, pool, cust, actor="t", at="2999-01-01T00:00:00Z")
    assert err.value.field == "valid_from"


def test_utilization_from_the_free_tally_matches_a_full_scan(session):
    """The tally (kept by triggers) gives what counting every holding and free block gives,
    through allocations, ends with and without quarantine, an early release, a child pool."""
    pool = pools.add_pool(session, "198.18.0.0/20", "tally", actor="t")
    pools.add_pool(session, "198.18.8.0/22", "tally-child", parent="tally", actor="t")
    cust = f.customer(session)
    held = [allocation.allocate(session, pool.id, cust.id, prefixlen=p, actor="t")
            for p in (32, 30, 27, 32, 24, 29)]  # fmt: skip
    allocation.allocate(session, pool.id, cust.id, prefix="198.18.4.128/25", actor="t")
    allocation.end_allocation(session, held[1], actor="t", quarantine_days=30)
    allocation.end_allocation(session, held[4], actor="t", quarantine_days=0)
    session.flush()

    def same():
        fast, scanned = (
            pools.utilization(session, pool.id),
            pools.utilization_scanned(session, pool.id),
        )
        assert fast == scanned, (fast, scanned)
        return fast

    assert same().allocated == 1 + 32 + 1 + 8 + 128 and same().quarantined == 4
    q = session.scalars(select(Quarantine)).one()
    reclamation.release_quarantine(session, actor="t", quarantine_id=q.id, early_reason="test")
    session.flush()
    assert same().quarantined == 0 and same().child_pools == 1024


def test_the_free_tally_stays_exact_through_a_bulk_rebuild(session):
    """A rebuild writes its free blocks by COPY (thousands of rows in one statement): the
    tally's PostgreSQL trigger counts them per statement (migration 0014), SQLite's per row;
    either way the tally equals a count of the free blocks, length by length."""
    from sqlalchemy import func, text

    from ipam.addresses import Block, parse_block

    pool = pools.add_pool(session, "198.18.0.0/16", "bulk", actor="t")
    first = parse_block("198.18.0.0/16", "p").first
    occupied = [Block(4, first + i, 32) for i in range(0, 4096, 3)]  # 1,366 holes' edges
    written = freespace.rebuild(session, pool.id, pool.block, occupied)
    session.flush()
    assert written > freespace.COPY_FROM  # the COPY path was taken
    counted = dict(
        session.execute(
            select(FreeBlock.prefixlen, func.count())
            .where(FreeBlock.pool_id == pool.id)
            .group_by(FreeBlock.prefixlen)
        ).all()
    )
    tally = dict(
        session.execute(
            text("SELECT prefixlen, n FROM free_tally WHERE pool_id = :p AND n > 0"),
            {"p": pool.id},
        ).all()
    )
    assert tally == counted and sum(counted.values()) == written
    assert freespace.free_size(session, pool.id) == 65536 - len(occupied)
    assert pools.utilization(session, pool.id).allocated == len(occupied)  # from the tally
