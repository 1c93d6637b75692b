"""Invariant 4: concurrent allocation never hands out an address twice.

16 threads, each with its own connection, race for a pool that has room for
only half of their requests; on PostgreSQL these really run at once.
"""

import threading

from sqlalchemy import func, select

from ipam import allocation
from ipam.errors import PoolExhausted
from ipam.models import Allocation, FreeBlock
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
