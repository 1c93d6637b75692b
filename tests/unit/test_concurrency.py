"""Invariant 4: concurrent allocation never hands out an address twice.

16 threads, each with its own connection, race for a pool that has room for
only half of their requests; on PostgreSQL these really run at once.
"""

import threading

from sqlalchemy import func, select

from ipam import allocation, pools
from ipam.errors import AddressConflict, PoolExhausted, ValidationError
from ipam.models import Allocation, FreeBlock, Pool
from tests import factories as f

THREADS = 16
TRIES = 4


def test_sixteen_threads_never_share_an_address(session, make_session):
    pool = f.pool(session, "198.18.0.0/27")  # 32 addresses for 64 requests
    cust = f.customer(session)
    session.commit()
    barrier = threading.Barrier(THREADS)
    got, failures, errors = [], [], []
    lock = threading.Lock()

    def worker():
        s = make_session()
        barrier.wait()
        for _ in range(TRIES):
            try:
                a = allocation.allocate(s, pool.id, cust.id, actor="race")
                prefix = a.prefix
                s.commit()
                with lock:
                    got.append(prefix)
            except PoolExhausted as exc:
                s.rollback()
                with lock:
                    failures.append(exc)
            except Exception as exc:  # noqa: BLE001 - any other failure fails the test
                s.rollback()
                with lock:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(got) == 32 and len(set(got)) == 32
    assert len(failures) == THREADS * TRIES - 32
    assert session.execute(select(func.count()).select_from(Allocation)).scalar() == 32
    assert session.execute(select(func.count()).select_from(FreeBlock)).scalar() == 0


def test_prefix_requests_race_too(session, make_session):
    pool = f.pool(session, "2001:db8::/56")  # 256 /64s, 16 threads x 20 requests
    cust = f.customer(session)
    session.commit()
    barrier = threading.Barrier(THREADS)
    got, errors = [], []
    lock = threading.Lock()

    def worker():
        s = make_session()
        barrier.wait()
        for _ in range(20):
            try:
                a = allocation.allocate(s, pool.id, cust.id, prefixlen=64, actor="race")
                prefix = a.prefix
                s.commit()
                with lock:
                    got.append(prefix)
            except PoolExhausted:
                s.rollback()
            except Exception as exc:  # noqa: BLE001
                s.rollback()
                with lock:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(got) == 256 and len(set(got)) == 256


def test_overlapping_pools_added_at_once_only_one_wins(session, make_session):
    barrier = threading.Barrier(8)
    won, refused, errors = [], [], []
    lock = threading.Lock()
    prefixes = ["198.18.0.0/16", "198.18.0.0/15", "198.18.128.0/17", "198.18.0.0/16"] * 2

    def worker(i):
        s = make_session()
        barrier.wait()
        try:
            pools.add_pool(s, prefixes[i], f"racer {i}", actor="race")
            s.commit()
            with lock:
                won.append(prefixes[i])
        except (AddressConflict, ValidationError):
            s.rollback()
            with lock:
                refused.append(i)
        except Exception as exc:  # noqa: BLE001
            s.rollback()
            with lock:
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = session.execute(select(Pool)).scalars().all()
    by_id = {p.id: p for p in rows}

    def ancestors(pool):
        while pool.parent_id is not None:
            pool = by_id[pool.parent_id]
            yield pool.id

    # whatever won, pools nest or are disjoint, and the smaller sits under the larger
    for a in rows:
        for b in rows:
            if a.id != b.id and a.block.overlaps(b.block):
                inner, outer = (a, b) if a.prefixlen > b.prefixlen else (b, a)
                assert inner.prefixlen > outer.prefixlen
                assert outer.id in set(ancestors(inner))
    assert len(won) + len(refused) == 8 and len({p.prefix for p in rows}) == len(rows)


def test_allocating_while_pools_are_carved_never_deadlocks(session, make_session):
    parent = f.pool(session, "198.18.0.0/16")
    cust = f.customer(session)
    session.commit()
    barrier = threading.Barrier(8)
    errors = []
    lock = threading.Lock()

    def allocator(n):
        s = make_session()
        barrier.wait()
        for k in range(15):  # specific blocks, clear of the carvers' /24s
            try:
                prefix = f"198.18.{n}.{16 * k}/28"
                allocation.allocate(s, parent.id, cust.id, prefix=prefix, actor="race")
                s.commit()
            except Exception as exc:  # noqa: BLE001 - a deadlock error would land here
                s.rollback()
                with lock:
                    errors.append(repr(exc))

    def carver(n):
        s = make_session()
        barrier.wait()
        for k in range(5):
            try:
                pools.add_pool(s, f"198.18.{128 + n * 8 + k}.0/24", f"child {n}.{k}", actor="race")
                s.commit()
            except Exception as exc:  # noqa: BLE001
                s.rollback()
                with lock:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=allocator, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=carver, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert session.execute(select(func.count()).select_from(Pool)).scalar() == 21
    assert session.execute(select(func.count()).select_from(Allocation)).scalar() == 60
