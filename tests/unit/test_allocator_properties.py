"""Property tests: random allocate/end/exit/release/sublease sequences keep the invariants.

After every step: no address is held twice, the free space is exactly the pool
minus holdings and quarantine, free blocks are maximal (no two free buddies),
and a refused "next free /n" really had no aligned free /n anywhere.
"""

import netaddr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from ipam import allocation, leasing, reclamation
from ipam.addresses import Block
from ipam.errors import AddressConflict, PoolExhausted, StateConflict
from ipam.models import Allocation, FreeBlock, Quarantine, Sublease
from tests import factories as f
from tests.conftest import clear

POOL = netaddr.IPNetwork("198.18.0.0/26")

ops = st.lists(
    st.one_of(
        st.tuples(st.just("next"), st.integers(0, 2), st.integers(27, 32)),
        st.tuples(st.just("specific"), st.integers(0, 2), st.integers(0, 63), st.integers(28, 32)),
        st.tuples(st.just("end"), st.integers(0, 1000), st.sampled_from([0, 0, 30])),
        st.tuples(st.just("exit"), st.integers(0, 2)),
        st.tuples(st.just("release"), st.integers(0, 1000)),
        st.tuples(st.just("sublease"), st.integers(0, 1000), st.integers(0, 1), st.integers(0, 3)),
        st.tuples(st.just("end_sublease"), st.integers(0, 1000)),
    ),
    min_size=1,
    max_size=50,
)


def _blocks(session, model, *where):
    return [r.block for r in session.execute(select(model).where(*where)).scalars()]


def current_rows(session, model):
    """The model's rows whose interval is open, oldest first."""
    stmt = select(model).where(model.valid_to.is_(None)).order_by(model.id)
    return session.execute(stmt).scalars().all()


def check_invariants(session, pool):
    held = _blocks(session, Allocation, Allocation.valid_to.is_(None))
    quarantined = _blocks(session, Quarantine, Quarantine.released_at.is_(None))
    free = _blocks(session, FreeBlock, FreeBlock.pool_id == pool.id)
    used = held + quarantined + free
    # a partition of the pool: sizes add up and the union is the pool
    assert sum(b.size for b in used) == POOL.size
    assert netaddr.IPSet(b.network for b in used) == netaddr.IPSet([POOL])
    # maximal free blocks: no free block's buddy is free too
    free_set = set(free)
    for b in free:
        if b.prefixlen > POOL.prefixlen:
            assert b.buddy() not in free_set
    check_subleases(session)
    return held, quarantined


def check_subleases(session):
    """Invariants 1 and 2 for subleases: disjoint, inside their allocation in space and time."""
    leases = session.execute(select(Sublease)).scalars().all()
    current = [x for x in leases if x.valid_to is None]
    for i, x in enumerate(current):
        for y in current[i + 1 :]:
            assert not x.block.overlaps(y.block), f"{x.prefix} and {y.prefix} both sub-leased"
    for x in leases:
        alloc = x.allocation
        assert alloc.block.contains(x.block)
        assert x.valid_from >= alloc.valid_from
        if alloc.valid_to is not None:
            assert x.valid_to is not None and x.valid_to <= alloc.valid_to


def has_aligned_free(session, pool, plen) -> bool:
    held, quarantined = check_invariants(session, pool)
    taken = netaddr.IPSet(b.network for b in held + quarantined)
    return any(not (netaddr.IPSet([sub]) & taken) for sub in POOL.subnet(plen))


def run(engine, steps):
    session = Session(engine, expire_on_commit=False)
    try:
        pool = f.pool(session, str(POOL))
        custs = [f.customer(session) for _ in range(3)]
        subs = {c.id: [f.sublessee(session, c) for _ in range(2)] for c in custs}
        session.commit()
        for step in steps:
            kind = step[0]
            try:
                if kind == "next":
                    allocation.allocate(session, pool, custs[step[1]], prefixlen=step[2], actor="p")
                elif kind == "specific":
                    plen = step[3]
                    size = 1 << (32 - plen)
                    first = int(POOL.first) + (step[2] // size) * size
                    prefix = str(Block(4, first, plen))
                    allocation.allocate(session, pool, custs[step[1]], prefix=prefix, actor="p")
                elif kind == "end":
                    current = current_rows(session, Allocation)
                    if current:
                        allocation.end_allocation(
                            session,
                            current[step[1] % len(current)],
                            actor="p",
                            quarantine_days=step[2],
                        )
                elif kind == "exit":
                    reclamation.customer_exit(session, custs[step[1]], actor="p", quarantine_days=0)
                elif kind == "sublease":
                    current = current_rows(session, Allocation)
                    if current:
                        alloc = current[step[1] % len(current)]
                        leasing.sublease(
                            session,
                            alloc,
                            subs[alloc.customer_id][step[2]],
                            prefixlen=min(32, alloc.prefixlen + step[3]),
                            actor="p",
                        )
                elif kind == "end_sublease":
                    leases = current_rows(session, Sublease)
                    if leases:
                        leasing.end_sublease(session, leases[step[1] % len(leases)], actor="p")
                elif kind == "release":
                    qs = reclamation.quarantined(session)
                    if qs:
                        reclamation.release_quarantine(
                            session,
                            actor="p",
                            quarantine_id=qs[step[1] % len(qs)].id,
                            early_reason="property test",
                        )
                session.commit()
            except PoolExhausted:
                session.rollback()
                assert not has_aligned_free(session, pool, step[2]), (
                    f"refused /{step[2]} although an aligned block was free"
                )
            except (AddressConflict, StateConflict):
                session.rollback()
            check_invariants(session, pool)
    finally:
        session.rollback()
        session.close()
        clear(engine)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=ops)
def test_random_sequences_keep_invariants(engine, steps):
    run(engine, steps)
