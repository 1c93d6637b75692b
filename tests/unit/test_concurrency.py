"""Invariant 4: concurrent changes never hand out an address twice, nor deadlock.

Threads, each with its own connection, start together behind a barrier; on
PostgreSQL they really run at once.
"""

import threading

from sqlalchemy import func, select

from ipam import allocation, pools
from ipam.errors import AddressConflict, PoolExhausted, ValidationError
from ipam.models import Allocation, FreeBlock, Pool
from tests import factories as f

THREADS = 16


def race(make_session, workers, tries, attempt, expected=()):
    """Run `attempt(session, worker, try)` tries times in each of `workers` threads at once.

    Each attempt commits or rolls back. Returns (results, expected failures,
    unexpected errors as text); any other exception is an unexpected error.
    """
    barrier = threading.Barrier(workers)
    results, refused, errors = [], [], []
    lock = threading.Lock()

    def run(n):
        s = make_session()
        barrier.wait()
        for k in range(tries):
            try:
                value = attempt(s, n, k)
                s.commit()
                with lock:
                    results.append(value)
            except expected as exc:
                s.rollback()
                with lock:
                    refused.append(exc)
            except Exception as exc:  # noqa: BLE001 - any other failure fails the test
                s.rollback()
                with lock:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, refused, errors


def count(session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar()


def test_sixteen_threads_never_share_an_address(session, make_session):
    pool = f.pool(session, "198.18.0.0/27")  # 32 addresses for 64 requests
    cust = f.customer(session)
    session.commit()
    got, refused, errors = race(
        make_session, THREADS, 4,
        lambda s, n, k: allocation.allocate(s, pool.id, cust.id, actor="race").prefix,
        expected=PoolExhausted,
    )  # fmt: skip
    assert errors == []
    assert len(got) == 32 and len(set(got)) == 32
    assert len(refused) == THREADS * 4 - 32  # every failure a clean "exhausted"
    assert count(session, Allocation) == 32
    assert count(session, FreeBlock) == 0


def test_prefix_requests_race_too(session, make_session):
    pool = f.pool(session, "2001:db8::/56")  # 256 /64s, 16 threads x 20 requests
    cust = f.customer(session)
    session.commit()
    got, refused, errors = race(
        make_session, THREADS, 20,
        lambda s, n, k: allocation.allocate(s, pool.id, cust.id, prefixlen=64,
                                            actor="race").prefix,
        expected=PoolExhausted,
    )  # fmt: skip
    assert errors == []
    assert len(got) == 256 and len(set(got)) == 256
    assert len(refused) == THREADS * 20 - 256


def test_overlapping_pools_added_at_once_nest_correctly(session, make_session):
    prefixes = ["198.18.0.0/16", "198.18.0.0/15", "198.18.128.0/17", "198.18.0.0/16"] * 2
    won, refused, errors = race(
        make_session, 8, 1,
        lambda s, n, k: pools.add_pool(s, prefixes[n], f"racer {n}", actor="race").prefix,
        expected=(AddressConflict, ValidationError),
    )  # fmt: skip
    assert errors == []
    assert len(won) + len(refused) == 8
    rows = session.execute(select(Pool)).scalars().all()
    by_id = {p.id: p for p in rows}

    def ancestors(pool):
        while pool.parent_id is not None:
            pool = by_id[pool.parent_id]
            yield pool.id

    # whatever won, pools nest or are disjoint, and the smaller sits under the larger
    assert len({p.prefix for p in rows}) == len(rows)
    for a in rows:
        for b in rows:
            if a.id != b.id and a.block.overlaps(b.block):
                inner, outer = (a, b) if a.prefixlen > b.prefixlen else (b, a)
                assert inner.prefixlen > outer.prefixlen
                assert outer.id in set(ancestors(inner))


def test_allocating_while_pools_are_carved_never_deadlocks(session, make_session):
    parent = f.pool(session, "198.18.0.0/16")
    cust = f.customer(session)
    session.commit()

    def attempt(s, n, k):
        if n < 4:  # allocators: specific blocks, clear of the carvers' /24s
            return allocation.allocate(
                s, parent.id, cust.id, prefix=f"198.18.{n}.{16 * k}/28", actor="race"
            ).prefix
        if k < 5:  # carvers: child pools of the same parent
            return pools.add_pool(
                s, f"198.18.{128 + (n - 4) * 8 + k}.0/24", f"child {n}.{k}", actor="race"
            ).prefix
        return None

    _, _, errors = race(make_session, 8, 15, attempt)
    assert errors == []  # a deadlock (or any error) would land here
    assert count(session, Pool) == 21
    assert count(session, Allocation) == 60
