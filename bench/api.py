"""API benchmark: concurrent next-free allocations over HTTP, and the address map of a full /16.

Runs gunicorn (gthread workers) on a PostgreSQL database of its own (created, then
dropped at the end), then:
  * 16 client threads, each with a keep-alive connection and an API token,
    POST /api/v1/allocations {"pool", "customer"} (next free address of one
    pool) for --seconds: allocations per second, p50/p99 latency, duplicates
    (answers that handed out the same address) and overlapping current rows
    in the database afterwards (both must be 0);
  * the same 16 clients split over two pools (8 + 8), to show that pools do
    not wait for each other: the ratio of the two runs is printed;
  * GET /map?prefix=<a /16 with 65,536 current single-address allocations>
    (HTML page) and /api/v1/map of it: server time, median of --map-runs.

Usage: python bench/api.py [--seconds 20] [--clients 16] [--workers CORES] [--threads 1]
Figures are printed (and saved to bench/results/api.json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ledger import bulk_rows, migrate, naive, pct, prepare_postgres  # noqa: E402

from ipam import allocation, customers, freespace, pools, users  # noqa: E402
from ipam.addresses import Block  # noqa: E402
from ipam.models import Allocation  # noqa: E402
from web import database_url  # noqa: E402

PG = os.environ.get("IPAM_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
PORT = 18731


def seed(url: str) -> dict:
    """Two empty /16 pools to allocate from, a full /16 for the map, a customer, a token."""
    engine = create_engine(database_url(url))
    with Session(engine) as s:
        a = pools.add_pool(s, "198.18.0.0/17", "bench A", actor="bench")
        b = pools.add_pool(s, "198.18.128.0/17", "bench B", actor="bench")
        full = pools.add_pool(s, "198.19.0.0/16", "bench full", actor="bench")
        cust = customers.add_customer(
            s,
            {"name": "压测客户有限公司", "uscc": "91110108MA01C8XK7H", "kind": "hosting"},
            actor="bench",
        )
        users.create_user(s, "bench", "bench-password", "engineer", actor="bench")
        _, secret = users.issue_token(s, "bench", "bench", actor="bench")
        s.commit()
        ids = {"a": a.id, "b": b.id, "full": full.id, "customer": cust.id, "token": secret}
    # 65,536 current single-address allocations: the whole /16.
    block = Block.of(4, int.from_bytes(bytes([198, 19, 0, 0]), "big"), 16)
    now = naive(datetime.now(UTC))
    first = block.first
    rows = (
        {
            "family": 4,
            "first": (first + i).to_bytes(16, "big"),
            "last": (first + i).to_bytes(16, "big"),
            "prefixlen": 32,
            "pool_id": ids["full"],
            "customer_id": ids["customer"],
            "purpose": "",
            "valid_from": now,
            "valid_to": None,
            "end_reason": None,
            "end_note": None,
            "created_at": now,
        }
        for i in range(65536)
    )
    bulk_rows(engine, Allocation.__table__, rows)
    with Session(engine) as s:
        held = (
            Block.of(4, int.from_bytes(f, "big"), p)
            for f, p in s.execute(
                select(Allocation.first, Allocation.prefixlen)
                .where(Allocation.pool_id == ids["full"])
                .order_by(Allocation.first)
            )
        )
        freespace.rebuild(s, ids["full"], block, held)
        allocation.rebuild_holding_lengths(s)
        s.commit()
    engine.dispose()
    ids["full_16"] = "198.19.0.0/16"
    return ids


def start_gunicorn(url: str, workers: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "IPAM_DATABASE_URL": url, "IPAM_SECRET_KEY": "bench-secret"}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{PORT}",
            "--log-level",
            "warning",
            "web.wsgi:app",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1)
            conn.request("GET", "/api/v1/openapi.json")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def cpu_seconds() -> dict:
    """CPU time used so far by the web workers, PostgreSQL and this (client) process."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"web": 0.0, "postgres": 0.0}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / tick
        if b"gunicorn" in cmd:
            out["web"] += used
        elif cmd.startswith(b"postgres"):
            out["postgres"] += used
    me = os.times()
    out["client"] = me.user + me.system
    return out


def hammer(pool_of_client, token: str, customer: int, seconds: float) -> dict:
    """Clients allocate the next free address in their pool until time is up."""
    lat: list[float] = []
    prefixes: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(pool_id: int):
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps({"pool": pool_id, "customer": customer})
        mine, got, bad = [], [], []
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            conn.request("POST", "/api/v1/allocations", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            mine.append(time.perf_counter() - t0)
            if response.status == 201:
                got.append(json.loads(data)["prefix"])
            else:
                bad.append(f"{response.status} {data[:120]!r}")
        conn.close()
        with lock:
            lat.extend(mine)
            prefixes.extend(got)
            errors.extend(bad)

    threads = [threading.Thread(target=client, args=(p,)) for p in pool_of_client]
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu1 = cpu_seconds()
    n = max(1, len(prefixes))
    cpu_ms = {k: round((cpu1[k] - cpu0[k]) / n * 1000, 2) for k in cpu0}
    return {
        "cpu_ms_per_allocation": cpu_ms,
        "clients": len(pool_of_client),
        "wall_s": round(wall, 2),
        "allocations": len(prefixes),
        "per_s": round(len(prefixes) / wall, 1),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "max_ms": round(max(lat, default=0) * 1000, 2),
        "duplicates": len(prefixes) - len(set(prefixes)),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def overlaps(url: str) -> int:
    """Current allocations whose range meets another's (must be 0)."""
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        # CIDR blocks nest or are disjoint, so sorted by start, an overlap shows up as a
        # row that starts at or before its predecessor's end (a window, not a self-join).
        n = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT first, lag(last) OVER (PARTITION BY family "
                "ORDER BY first, id) AS prev_last FROM allocation WHERE valid_to IS NULL) t "
                "WHERE prev_last >= first"
            )
        ).scalar()
        total = conn.execute(select(func.count()).select_from(Allocation.__table__)).scalar()
    engine.dispose()
    print(f"  database: {total} allocation rows, {n} current rows overlapping their predecessor")
    return n


def session_cookie() -> str:
    """Log in through the form, as a browser does; returns the session cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = response.getheader("Set-Cookie").split(";")[0]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = urlencode({"username": "bench", "password": "bench-password", "csrf_token": csrf})
    conn.request(
        "POST",
        "/login",
        body=form,
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 302, response.status
    return response.getheader("Set-Cookie").split(";")[0]


def time_map(headers: dict, path: str, runs: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    times, size = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        size = len(response.read())
        times.append(time.perf_counter() - t0)
        assert response.status == 200, response.status
    conn.close()
    return {
        "median_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "bytes": size,
    }


def reads(token: str, clients: int, seconds: float) -> dict:
    """`clients` threads asking "who held this address" over HTTP, for `seconds`."""
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(n: int):
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        headers = {"Authorization": f"Bearer {token}"}
        mine, bad, i = [], [], n
        while time.perf_counter() < stop:
            i += 7919
            path = f"/api/v1/attribution?address=198.19.{(i >> 8) & 255}.{i & 255}"
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - t0)
            if response.status != 200:
                bad.append(str(response.status))
        conn.close()
        with lock:
            lat.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "per_s": round(len(lat) / wall),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "errors": len(errors),
    }


def sqlite_reads(args) -> None:
    """HTTP attribution on SQLite with 1, 2, 4, 8 clients: do reads grow with clients?"""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ipam-bench-reads-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'reads.sqlite3'}"
        migrate(url)
        ids = seed(url)
        print(f"machine: {os.cpu_count()} cores; gunicorn {args.workers} workers on SQLite")
        proc = start_gunicorn(url, args.workers, args.threads)
        try:
            reads(ids["token"], 2, 1.0)  # warm up
            runs = [reads(ids["token"], n, args.seconds / 4) for n in (1, 2, 4, 8)]
            for r in runs:
                print(f"  attribution over HTTP, {r['clients']} client(s): {json.dumps(r)}")
            print(f"  8 clients / 1 client: {runs[-1]['per_s'] / runs[0]['per_s']:.2f}x")
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--map-runs", type=int, default=10)
    parser.add_argument(
        "--sqlite-reads", action="store_true", help="HTTP attribution on SQLite, 1-8 clients"
    )
    args = parser.parse_args()
    if args.sqlite_reads:
        return sqlite_reads(args)

    url = prepare_postgres(database_url(PG))
    migrate(url)
    ids = seed(url)
    print(
        f"machine: {os.cpu_count()} cores; gunicorn {args.workers} workers x "
        f"{args.threads} threads (gthread) on PostgreSQL"
    )
    proc = start_gunicorn(url, args.workers, args.threads)
    try:
        hammer([ids["a"]] * 2, ids["token"], ids["customer"], 2)  # warm up every worker
        one = hammer([ids["a"]] * args.clients, ids["token"], ids["customer"], args.seconds)
        print(f"one pool, {args.clients} clients: {json.dumps(one, ensure_ascii=False)}")
        half = args.clients // 2
        two = hammer(
            [ids["a"]] * half + [ids["b"]] * (args.clients - half),
            ids["token"],
            ids["customer"],
            args.seconds,
        )
        print(f"two pools, {half}+{args.clients - half} clients: {json.dumps(two)}")
        print(f"  two pools / one pool throughput: {two['per_s'] / one['per_s']:.2f}x")
        bad = overlaps(url)
        cookie = {"Cookie": session_cookie()}
        page = time_map(cookie, f"/map?prefix={ids['full_16']}", args.map_runs)
        bearer = {"Authorization": f"Bearer {ids['token']}"}
        api = time_map(bearer, f"/api/v1/map?prefix={ids['full_16']}", args.map_runs)
        print(f"address map, 65,536 allocated addresses: HTML {page}, JSON {api}")
    finally:
        proc.terminate()
        proc.wait(10)
    out = {
        "cores": os.cpu_count(),
        "workers": args.workers,
        "threads": args.threads,
        "one_pool": one,
        "two_pools": two,
        "overlapping_pairs": bad,
        "map_html": page,
        "map_json": api,
    }
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "api.json").write_text(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
