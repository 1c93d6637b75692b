"""Ledger benchmark: allocation latency and attribution rate at 1,000,000 holdings.

For each back-end (SQLite file; a PostgreSQL database of its own, dropped at the end):
  * a /8 pool with 1,000,000 current single-address allocations scattered over
    its first 1,200,000 addresses, each address with two earlier holders
    (3,000,000 allocation rows), 10 % of the current ones sub-leased;
  * a /32 IPv6 pool with 1,000,000 /64s held;
then it reports
  * next-free-address allocation latency p50/p99, commit included;
  * next-free /64 latency p50/p99 in the /32;
  * attribution lookups per second (random address, random instant in the history);
  * the same next-free question answered the NetBox (< 4.6.3) way,
    netaddr IPSet(pool) - IPSet(held), in the same run, and the ratio.

Usage: python bench/ledger.py [--backend sqlite|postgresql|both] [--held N]
Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import netaddr
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ipam import allocation, attribution, freespace  # noqa: E402
from ipam.addresses import Block, to_bytes  # noqa: E402
from ipam.models import (  # noqa: E402
    Allocation,
    Customer,
    CustomerRevision,
    Pool,
    Sublease,
    Sublessee,
    SublesseeRevision,
)
from web import create_app, database_url  # noqa: E402
from web.cli import init_database  # noqa: E402

V4_POOL = netaddr.IPNetwork("10.0.0.0/8")  # never probed: a ledger entry only
V6_POOL = netaddr.IPNetwork("2001:db8::/32")
T1 = datetime(2023, 1, 1, tzinfo=UTC)
T2 = datetime(2024, 1, 1, tzinfo=UTC)
T3 = datetime(2025, 1, 1, tzinfo=UTC)
CUSTOMERS = 1000


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def migrate(url: str) -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    with app.app_context():
        init_database()
        from web.extensions import db

        db.engine.dispose()


def prepare_postgres(url: str) -> str:
    """A new database of this run's own on the server of `url`, dropped when the run ends.

    The benchmark never empties or drops a database it did not create.
    """
    import atexit
    import secrets

    server = url.rsplit("/", 1)[0]
    name = f"ipam_bench_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    atexit.register(drop)
    return f"{server}/{name}"


def bulk_rows(engine, table, rows, batch=50_000):
    """Insert storage-level rows fast: COPY on PostgreSQL, executemany on SQLite.

    Values are as stored: naive UTC datetimes, JSON as text, addresses as bytes.
    """
    it = iter(rows)
    first = next(it, None)
    if first is None:
        return
    cols = list(first.keys())
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
                copy.write_row([first[c] for c in cols])
                for row in it:
                    copy.write_row([row[c] for c in cols])
        else:
            marks = ", ".join("?" * len(cols))
            sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({marks})"
            cur.execute("BEGIN")
            chunk = [[_sqlite(first[c]) for c in cols]]
            for row in it:
                chunk.append([_sqlite(row[c]) for c in cols])
                if len(chunk) >= batch:
                    cur.executemany(sql, chunk)
                    chunk = []
            cur.executemany(sql, chunk)
        raw.commit()
    finally:
        raw.close()


def _sqlite(value):
    # SQLAlchemy's SQLite DateTime storage format, so comparisons in SQL stay right.
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def naive(dt):
    return dt.astimezone(UTC).replace(tzinfo=None) if dt else None


def load(engine, held: int) -> dict:
    """Bulk-load the ledger; return what the measurements need."""
    rng = random.Random(8)
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    with Session(engine) as s:
        for name, net in (("bench v4 /8", V4_POOL), ("bench v6 /32", V6_POOL)):
            b = Block.from_network(net)
            s.add(
                Pool(
                    name=name,
                    family=b.family,
                    first=to_bytes(b.first),
                    last=to_bytes(b.last),
                    prefixlen=b.prefixlen,
                    created_at=T1,
                )
            )
        s.commit()
        v4_id, v6_id = (
            s.execute(select(Pool.id).where(Pool.name == n)).scalar()
            for n in ("bench v4 /8", "bench v6 /32")
        )
    custs = [
        {
            "id": i,
            "name": f"bench customer {i}",
            "uscc": f"9111010800{i:08d}",
            "kind": "hosting",
            "status": "active",
            "responsible_persons": "[]",
            "contacts": json.dumps([{"name": f"contact {i}", "phone": "+8613800138000"}]),
            "created_at": naive(T1),
            "updated_at": naive(T1),
            "lock_version": 0,
        }
        for i in range(1, CUSTOMERS + 1)
    ]
    bulk_rows(engine, Customer.__table__, custs)
    bulk_rows(
        engine,
        CustomerRevision.__table__,
        [
            {
                "customer_id": c["id"],
                "recorded_at": naive(T1),
                "snapshot": json.dumps(
                    {"id": c["id"], "name": c["name"], "contacts": json.loads(c["contacts"])}
                ),
            }
            for c in custs
        ],
    )
    subs = [
        {
            "id": i,
            "customer_id": i,
            "kind": "organisation",
            "name": f"sublessee {i}",
            "id_type": "other",
            "id_number": f"X{i}",
            "contact_person": "p",
            "phone": "+8613800138000",
            "email": "s@example.com",
            "address": "a",
            "purpose": "p",
            "domains": "[]",
            "created_at": naive(T1),
            "updated_at": naive(T1),
        }
        for i in range(1, CUSTOMERS + 1)
    ]
    bulk_rows(engine, Sublessee.__table__, subs)
    bulk_rows(
        engine,
        SublesseeRevision.__table__,
        [
            {
                "sublessee_id": i,
                "recorded_at": naive(T1),
                "snapshot": json.dumps({"id": i, "name": f"sublessee {i}"}),
            }
            for i in range(1, CUSTOMERS + 1)
        ],
    )
    span = int(held * 1.2)
    offsets = sorted(rng.sample(range(span), held))
    base = V4_POOL.first

    def v4_rows():
        for off in offsets:
            a = to_bytes(base + off)
            for k, (start, end) in enumerate(((T1, T2), (T2, T3), (T3, None))):
                yield {
                    "pool_id": v4_id,
                    "customer_id": (off + k * 7) % CUSTOMERS + 1,
                    "family": 4,
                    "first": a,
                    "last": a,
                    "prefixlen": 32,
                    "purpose": "bench",
                    "valid_from": naive(start),
                    "valid_to": naive(end),
                    "end_reason": "ended" if end else None,
                    "created_at": naive(start),
                }

    bulk_rows(engine, Allocation.__table__, v4_rows())
    v6_base = V6_POOL.first

    def v6_rows():
        for i in range(held):
            first = v6_base + (i << 64)
            yield {
                "pool_id": v6_id,
                "customer_id": i % CUSTOMERS + 1,
                "family": 6,
                "first": to_bytes(first),
                "last": to_bytes(first + (1 << 64) - 1),
                "prefixlen": 64,
                "purpose": "bench",
                "valid_from": naive(T3),
                "valid_to": None,
                "end_reason": None,
                "created_at": naive(T3),
            }

    bulk_rows(engine, Allocation.__table__, v6_rows())
    with engine.begin() as conn:
        current = conn.execute(
            text(
                "SELECT id, first FROM allocation WHERE pool_id = :p AND valid_to IS NULL "
                "AND id % 10 = 0"
            ),
            {"p": v4_id},
        ).all()
    bulk_rows(
        engine,
        Sublease.__table__,
        [
            {
                "allocation_id": aid,
                "sublessee_id": aid % CUSTOMERS + 1,
                "family": 4,
                "first": first,
                "last": first,
                "prefixlen": 32,
                "valid_from": naive(T3),
                "valid_to": None,
                "end_reason": None,
                "created_at": naive(T3),
            }
            for aid, first in current
        ],
    )
    loaded = time.perf_counter() - t0
    # Derive the free space from the current holdings (streamed, sorted).
    t1 = time.perf_counter()
    with Session(engine) as s:
        for pool_id, pool_net in ((v4_id, V4_POOL), (v6_id, V6_POOL)):
            rows = s.execute(
                select(Allocation.family, Allocation.first, Allocation.prefixlen)
                .where(Allocation.pool_id == pool_id, Allocation.valid_to.is_(None))
                .order_by(Allocation.first)
                .execution_options(yield_per=20000)
            )
            freespace.rebuild(
                s, pool_id, Block.from_network(pool_net), (Block.of(f, b, p) for f, b, p in rows)
            )
        allocation.rebuild_holding_lengths(s)
        s.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    rebuilt = time.perf_counter() - t1
    del now
    return {"v4": v4_id, "v6": v6_id, "span": span, "load_s": loaded, "rebuild_s": rebuilt}


def time_allocations(engine, pool_id, prefixlen, n) -> list[float]:
    lat = []
    with Session(engine) as s:
        for i in range(n):
            t = time.perf_counter()
            allocation.allocate(s, pool_id, i % CUSTOMERS + 1, prefixlen=prefixlen, actor="bench")
            s.commit()
            lat.append(time.perf_counter() - t)
    return lat


def ipset_next_free(engine, pool_id, net) -> tuple[float, str]:
    """NetBox before 4.6.3: IPSet(prefix) - IPSet(child IPs), then the first address."""
    t = time.perf_counter()
    with engine.connect() as conn:
        firsts = (
            conn.execute(
                text("SELECT first FROM allocation WHERE pool_id = :p AND valid_to IS NULL"),
                {"p": pool_id},
            )
            .scalars()
            .all()
        )
    held = netaddr.IPSet(netaddr.IPAddress(int.from_bytes(b, "big"), 4) for b in firsts)
    available = netaddr.IPSet([net]) - held
    first_free = next(iter(available.iter_cidrs()))[0]
    return time.perf_counter() - t, str(first_free)


def time_attribution(engine, span, n) -> dict:
    """Lookups per second, one at a time and as one batch, wall and CPU (this process)."""
    rng = random.Random(3)
    start = T1.timestamp()
    end = datetime.now(UTC).timestamp()
    questions = [
        (
            str(netaddr.IPAddress(V4_POOL.first + rng.randrange(span), 4)),
            datetime.fromtimestamp(rng.uniform(start, end), UTC),
        )
        for _ in range(n)
    ]
    statuses: dict[str, int] = {}
    out = {}
    with Session(engine) as s:
        attribution.attribution(s, *questions[0])  # warm the statement caches
        wall, cpu = time.perf_counter(), time.process_time()
        for addr, at in questions:
            r = attribution.attribution(s, addr, at)
            statuses[r.status] = statuses.get(r.status, 0) + 1
        out["single"] = (n / (time.perf_counter() - wall), n / (time.process_time() - cpu))
        wall, cpu = time.perf_counter(), time.process_time()
        answers = attribution.attribute_many(s, questions)
        out["batch"] = (n / (time.perf_counter() - wall), n / (time.process_time() - cpu))
        assert len(answers) == n
    out["statuses"] = statuses
    return out


def run(backend: str, url: str, held: int, n_alloc: int, n_attr: int, ipset_runs: int) -> dict:
    print(
        f"\n== {backend}: {held:,} held addresses, {3 * held:,} v4 allocation rows "
        f"+ {held:,} /64s ==",
        flush=True,
    )
    migrate(url)
    engine = create_engine(url)
    info = load(engine, held)
    print(
        f"bulk load {info['load_s']:.1f} s, free-space rebuild {info['rebuild_s']:.1f} s",
        flush=True,
    )
    lat4 = time_allocations(engine, info["v4"], 32, n_alloc)
    lat6 = time_allocations(engine, info["v6"], 64, n_alloc)
    attr = time_attribution(engine, info["span"], n_attr)
    ipset = [ipset_next_free(engine, info["v4"], V4_POOL) for _ in range(ipset_runs)]
    ipset_s = statistics.median(t for t, _ in ipset)
    engine.dispose()
    p50_4, p99_4 = 1000 * pct(lat4, 50), 1000 * pct(lat4, 99)
    p50_6, p99_6 = 1000 * pct(lat6, 50), 1000 * pct(lat6, 99)
    res = {
        "backend": backend,
        "alloc_v4_p50_ms": p50_4,
        "alloc_v4_p99_ms": p99_4,
        "alloc_v6_p50_ms": p50_6,
        "alloc_v6_p99_ms": p99_6,
        "attr_single_per_s": attr["single"][0],
        "attr_single_per_cpu_s": attr["single"][1],
        "attr_batch_per_s": attr["batch"][0],
        "attr_batch_per_cpu_s": attr["batch"][1],
        "ipset_s": ipset_s,
        "ratio": ipset_s / pct(lat4, 50),
    }
    print(
        f"next free address : p50 {p50_4:.2f} ms  p99 {p99_4:.2f} ms  "
        f"({n_alloc} allocations, commit included)"
    )
    print(
        f"next free /64     : p50 {p50_6:.2f} ms  p99 {p99_6:.2f} ms  "
        f"({n_alloc} allocations in the /32)"
    )
    for mode in ("single", "batch"):
        wall_rate, cpu_rate = attr[mode]
        print(
            f"attribution {mode:<6}: {wall_rate:,.0f} lookups/s wall, {cpu_rate:,.0f} per "
            "CPU-second of this process (one thread)"
        )
    print(f"  answers: {attr['statuses']}")
    print(
        f"IPSet way         : {ipset_s:.2f} s per next-free (median of {ipset_runs}; "
        f"first free {ipset[0][1]})"
    )
    print(f"ratio             : ours is {res['ratio']:,.0f}x faster than IPSet at {held:,} held")
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--held", type=int, default=1_000_000)
    parser.add_argument("--allocations", type=int, default=1000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--ipset-runs", type=int, default=3)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "IPAM_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    results = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite3"
            results.append(
                run("sqlite", url, args.held, args.allocations, args.lookups, args.ipset_runs)
            )
    if args.backend in ("postgresql", "both"):
        url = prepare_postgres(database_url(args.pg_url))
        results.append(
            run("postgresql", url, args.held, args.allocations, args.lookups, args.ipset_runs)
        )
    print("\nsummary:")
    for r in results:
        print(
            "  "
            + "  ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
            )
        )


if __name__ == "__main__":
    main()
