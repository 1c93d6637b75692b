"""Page benchmark: the pages engineers open all day, at 10,000 / 100,000 / 1,000,000 held.

For each size, an SQLite file (or a PostgreSQL database of its own) is bulk-loaded the way
bench/ledger.py does (a /8 with that many current single-address allocations and two
earlier holders each, 10 % sub-leased, the same number of /64s in a /32), then each page
is fetched through the app (server time, median of --runs): the dashboard, the pool tree,
the /8 pool's page, the address map of the /8 and of one /16, the page of the customer
with the most allocations, the lists of allocations (all, and that customer's) and of the
audit log, an address's history and the abuse cases page (with its weekly picture).
Beside them, in the same run: pool utilization the old way
(grouping every current holding) against the free tally. The pages must cost about the
same at every size; the printed ratios say whether they do.

Usage: python bench/pages.py [--sizes 10000,100000,1000000] [--backend sqlite|postgresql]
Figures are printed (and saved to bench/results/pages.json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ledger import load, migrate, prepare_postgres  # noqa: E402

from ipam import addressmap, pools, users  # noqa: E402
from ipam.models import Allocation  # noqa: E402
from web import create_app, database_url  # noqa: E402

PG = os.environ.get("IPAM_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 1)


def measure(url: str, held: int, runs: int) -> dict:
    migrate(url)
    engine = create_engine(database_url(url))
    info = load(engine, held)
    with Session(engine) as s:
        users.create_user(s, "pages", "pages-bench-password", "engineer", actor="bench")
        s.commit()
        busiest = s.execute(
            select(Allocation.customer_id, func.count())
            .group_by(Allocation.customer_id)
            .order_by(func.count().desc())
            .limit(1)
        ).first()
        old_way = timed(lambda: pools.utilization_scanned(s, info["v4"]), runs)
        new_way = timed(lambda: pools.utilization(s, info["v4"]), runs)
        assert pools.utilization(s, info["v4"]) == pools.utilization_scanned(s, info["v4"])
        drawn = addressmap.address_map(s, "10.0.0.0/8")
        map_read = timed(
            lambda: addressmap.address_map(s, "10.0.0.0/8", len(drawn.cells), tally=False), runs
        )
        map_tally = timed(lambda: addressmap.address_map(s, "10.0.0.0/8"), runs)
        read = addressmap.address_map(s, "10.0.0.0/8", len(drawn.cells), tally=False)
        assert [(c.allocated, c.subleased) for c in drawn.cells] == [
            (c.allocated, c.subleased) for c in read.cells
        ]
    engine.dispose()
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url(url), "SECRET_KEY": "bench", "TESTING": True}
    )
    client = app.test_client()
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "pages", "password": "pages-bench-password",
                                "csrf_token": token})  # fmt: skip
    pages = {
        "dashboard": "/",
        "pool tree": "/pools",
        "pool page (/8)": f"/pools/{info['v4']}",
        "map of the /8": "/map?prefix=10.0.0.0/8",
        "map of a /16": "/map?prefix=10.1.0.0/16",
        "customer page": f"/customers/{busiest[0]}",
        "allocations list": "/lists/allocations",
        "allocations list by customer": f"/lists/allocations?customer={busiest[0]}",
        "audit log list": "/lists/audit",
        "address history": "/history?address=10.1.2.3",
        "abuse cases page": "/abuse/cases",
    }
    util = {"grouping every holding": old_way, "free tally": new_way}
    maps = {"reading every holding": map_read, "map tally": map_tally}
    out = {
        "held": held, "customer_allocations": busiest[1], "utilization_ms": util,
        "map_of_the_8_ms": maps,
    }  # fmt: skip
    for name, path in pages.items():

        def get(path=path):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            response.get_data()

        out[name] = timed(get, runs)
    with app.app_context():
        from web.extensions import db

        db.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"machine: {os.cpu_count()} cores; {args.backend}; server time, median of {args.runs}")
    results = []
    with tempfile.TemporaryDirectory(prefix="ipam-bench-pages-") as tmp:
        for held in sizes:
            if args.backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / f'pages-{held}.sqlite3'}"
            else:
                url = prepare_postgres(database_url(PG))
            row = measure(url, held, args.runs)
            results.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    first, last = results[0], results[-1]
    print(f"\nms at {first['held']:,} -> {last['held']:,} held (ratio):")
    width = 30
    for name in ("dashboard", "pool tree", "pool page (/8)", "map of the /8", "map of a /16",
                 "customer page", "allocations list", "allocations list by customer",
                 "audit log list", "address history", "abuse cases page"):  # fmt: skip
        ratio = last[name] / first[name] if first[name] else float("nan")
        print(f"  {name:{width}} {first[name]:8.1f} -> {last[name]:8.1f}  ({ratio:.1f}x)")
    u0, u1 = first["utilization_ms"], last["utilization_ms"]
    print(
        f"  utilization, grouping every holding {u0['grouping every holding']} -> "
        f"{u1['grouping every holding']} ms; free tally {u0['free tally']} -> "
        f"{u1['free tally']} ms"
    )
    m0, m1 = first["map_of_the_8_ms"], last["map_of_the_8_ms"]
    print(
        f"  map of the /8, reading every holding {m0['reading every holding']} -> "
        f"{m1['reading every holding']} ms; map tally {m0['map tally']} -> {m1['map tally']} ms"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"pages-{args.backend}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
