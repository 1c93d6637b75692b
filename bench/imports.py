"""Import benchmark: a 200,000-row allocations import while 16 clients allocate over HTTP.

For each back-end (an SQLite file; a PostgreSQL database of its own, dropped at the end):
  * quiet: `ipam import allocations` of N rows (explicit /32s in a /14) with nothing else
    running: rows per second, checking and writing separately;
  * the same import into a fresh pool while gunicorn serves 16 clients that allocate the
    next free address of another pool over HTTP: the import's rows per second, and the
    live allocations' p50/p99/max latency, errors (any 5xx) and duplicates, during the
    import and, for comparison in the same run, for as long again with no import;
  * the old way for comparison (row by row through allocate(), one transaction):
    rows per second on --legacy-rows rows, and the ratio.

Usage: python bench/imports.py [--backend sqlite|postgresql|both] [--rows 200000]
Figures are printed (and saved to bench/results/imports.json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import api as api_bench  # noqa: E402
from ledger import migrate, prepare_postgres  # noqa: E402

from ipam import allocation, bulk, customers, pools, users  # noqa: E402
from ipam.models import Allocation  # noqa: E402
from web import database_url  # noqa: E402

PG = os.environ.get("IPAM_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
USCC = "91110108MA01C8XK7H"


def seed(url: str) -> dict:
    engine = create_engine(database_url(url))
    with Session(engine) as s:
        live = pools.add_pool(s, "198.18.0.0/16", "live", actor="bench")
        for i, prefix in enumerate(("10.0.0.0/14", "10.4.0.0/14", "10.8.0.0/14")):
            pools.add_pool(s, prefix, f"import{i}", actor="bench")
        pools.add_pool(s, "10.12.0.0/14", "legacy", actor="bench")
        cust = customers.add_customer(
            s, {"name": "导入压测有限公司", "uscc": USCC, "kind": "hosting"}, actor="bench"
        )
        users.create_user(s, "bench", "bench-password", "engineer", actor="bench")
        _, secret = users.issue_token(s, "bench", "bench", actor="bench")
        s.commit()
        ids = {"live": live.id, "customer": cust.id, "token": secret}
    engine.dispose()
    return ids


def write_csv(path: Path, pool: str, base: int, rows: int) -> None:
    with path.open("w") as fh:
        fh.write("pool,customer,prefix,purpose\n")
        for i in range(rows):
            n = base + i
            fh.write(f"{pool},{USCC},10.{n >> 16}.{(n >> 8) & 255}.{n & 255}/32,import\n")


def run_import(url: str, path: Path) -> dict:
    """`ipam import allocations` in a process of its own, as an operator would run it."""
    env = {**os.environ, "IPAM_DATABASE_URL": url, "IPAM_SECRET_KEY": "bench"}
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ipam"), "import", "allocations", str(path)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stdout} {done.stderr[-2000:]}")
    rows = int(done.stdout.split("imported ")[1].split()[0])
    inside = float(done.stdout.split(") in ")[1].split()[0])  # what the command measured
    return {
        "rows": rows,
        "seconds": round(inside, 2),
        "rows_per_s": round(rows / inside),
        "with_process_start_s": round(wall, 2),
        "rows_per_s_with_process_start": round(rows / wall),
    }


def phases(url: str, path: Path) -> dict:
    """Check and write timed apart, in this process (the quiet figure's breakdown)."""
    engine = create_engine(database_url(url))
    with Session(engine) as s:
        with path.open("rb") as fh:
            t0 = time.perf_counter()
            rows, report, _ = bulk.check(s, fh)
            checked = time.perf_counter() - t0
        assert not report.errors, report.errors[:3]
    engine.dispose()
    return {"check_s": round(checked, 2), "check_rows_per_s": round(len(rows) / checked)}


def legacy(url: str, n: int) -> dict:
    """The old import: allocate() row by row in one transaction, holding the pool's lock."""
    engine = create_engine(database_url(url))
    with Session(engine) as s:
        t0 = time.perf_counter()
        for i in range(n):
            allocation.allocate(
                s, "legacy", USCC, prefix=f"10.12.{i >> 8}.{i & 255}/32", actor="bench"
            )
        s.commit()
        wall = time.perf_counter() - t0
    engine.dispose()
    return {"rows": n, "seconds": round(wall, 2), "rows_per_s": round(n / wall)}


def live_load(ids: dict, seconds: float | None, stop: threading.Event | None) -> dict:
    """16 clients allocating the next free address of the live pool over HTTP."""
    result = {}

    def go():
        result.update(api_bench.hammer([ids["live"]] * 16, ids["token"], ids["customer"], seconds))

    if stop is None:
        go()
        return result
    # Until the import ends: hammer() runs for a fixed time, so run rounds until stopped.
    rounds = []
    while not stop.is_set():
        rounds.append(api_bench.hammer([ids["live"]] * 16, ids["token"], ids["customer"], 2.0))
    return _merge(rounds)


def _merge(rounds: list[dict]) -> dict:
    if not rounds:
        return {}
    n = sum(r["allocations"] for r in rounds)
    wall = sum(r["wall_s"] for r in rounds)
    return {
        "allocations": n,
        "per_s": round(n / wall, 1),
        "p50_ms": max(r["p50_ms"] for r in rounds),
        "p99_ms": max(r["p99_ms"] for r in rounds),
        "max_ms": max(r.get("max_ms", r["p99_ms"]) for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "first_errors": [e for r in rounds for e in r["first_errors"]][:3],
        "duplicates": sum(r["duplicates"] for r in rounds),
    }


def backend(name: str, url: str, rows: int, legacy_rows: int, tmp: Path) -> dict:
    migrate(url)
    ids = seed(url)
    quiet_file, busy_file = tmp / f"{name}-quiet.csv", tmp / f"{name}-busy.csv"
    write_csv(quiet_file, "import0", 0, rows)
    write_csv(busy_file, "import1", 4 << 16, rows)
    out = {"phases": phases(url, quiet_file)}
    out["quiet"] = run_import(url, quiet_file)
    print(f"[{name}] quiet import: {out['quiet']}  (check alone: {out['phases']})", flush=True)
    out["legacy"] = legacy(url, legacy_rows)
    ratio = out["quiet"]["rows_per_s"] / out["legacy"]["rows_per_s"]
    print(f"[{name}] row by row (the old import): {out['legacy']}; new/old {ratio:.1f}x")
    env_url = url
    proc = api_bench.start_gunicorn(env_url, os.cpu_count() or 2, 1)
    try:
        api_bench.hammer([ids["live"]] * 2, ids["token"], ids["customer"], 1)  # warm up
        out["live_alone"] = _merge([live_load(ids, 2.0, None) for _ in range(5)])
        print(f"[{name}] 16 clients, no import: {out['live_alone']}", flush=True)
        stop = threading.Event()
        during: dict = {}
        loader = threading.Thread(target=lambda: during.update(live_load(ids, None, stop)))
        loader.start()
        time.sleep(1.0)
        try:
            out["busy"] = run_import(url, busy_file)
        finally:
            stop.set()
            loader.join()
        out["live_during_import"] = during
        print(f"[{name}] import with 16 clients allocating: {out['busy']}")
        print(f"[{name}] 16 clients during the import: {during}")
        if out["live_alone"].get("p99_ms"):
            print(
                f"[{name}] live p99 during / without the import: "
                f"{during['p99_ms'] / out['live_alone']['p99_ms']:.1f}x; import rows/s busy / "
                f"quiet: {out['busy']['rows_per_s'] / out['quiet']['rows_per_s']:.2f}x"
            )
    finally:
        proc.terminate()
        proc.wait(10)
    engine = create_engine(database_url(url))
    with Session(engine) as s:
        out["allocations_total"] = s.scalar(select(func.count()).select_from(Allocation))
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--legacy-rows", type=int, default=5_000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; {args.rows} rows per import")
    results = {"cores": os.cpu_count(), "rows": args.rows}
    with tempfile.TemporaryDirectory(prefix="ipam-bench-import-") as tmp:
        tmp = Path(tmp)
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{tmp / 'bench.sqlite3'}"
            results["sqlite"] = backend("sqlite", url, args.rows, args.legacy_rows, tmp)
        if args.backend in ("postgresql", "both"):
            url = prepare_postgres(database_url(PG))
            results["postgresql"] = backend("postgresql", url, args.rows, args.legacy_rows, tmp)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "imports.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
