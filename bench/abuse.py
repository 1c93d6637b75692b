"""Abuse intake benchmark: CSV reports and ARF messages ingested end to end on a big ledger.

Loads the core benchmark's ledger (bench/ledger.py: --held single-address
allocations in 10.0.0.0/8 with earlier holders), then ingests CSV reports and
ARF messages about addresses in it, at times spread over the ledger's history,
through ipam.abuse.ingest (parse, attribute at the event's time, case, store),
one transaction per batch. Prints reports per second and the peak memory of
the process for two batch sizes (flat memory means the batch size does not
matter). Nothing is asserted.

Usage: python bench/abuse.py [--backend sqlite|postgresql|both] [--held 1000000]
       [--csv 100000] [--arf 10000] [--batch 5000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ledger import load, migrate, prepare_postgres  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from ipam.abuse import ingest  # noqa: E402
from web import database_url  # noqa: E402

ARF = """From: <fbl@mailbox.example>
Date: {date}
Subject: FW: report {n}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b{n}"

--b{n}
Content-Type: text/plain; charset=us-ascii

Complaint {n} about {ip}.
--b{n}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: bench/1.0
Version: 1
Source-IP: {ip}
Arrival-Date: {date}

--b{n}--
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def addresses(span: int, n: int, rng) -> list[str]:
    """Addresses among the first `span` of 10.0.0.0/8, where the ledger holds most."""
    return [
        f"10.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
        for v in (rng.randrange(span) for _ in range(n))
    ]


def bench_csv(engine, span, n, batch, rng) -> dict:
    now = datetime.now(UTC)
    t0, done = time.perf_counter(), 0
    while done < n:
        size = min(batch, n - done)
        rows = ["address,time,category,description,reporter"]
        for i, ip in enumerate(addresses(span, size, rng)):
            at = now - timedelta(days=rng.uniform(1, 700), seconds=done + i)
            rows.append(f"{ip},{at.isoformat()},spam,bench row {done + i},bench@example.org")
        with Session(engine) as s:
            ingest.ingest(s, ("\n".join(rows) + "\n").encode(), actor="bench", kind="csv")
            s.commit()
        done += size
    wall = time.perf_counter() - t0
    return {"reports": n, "wall_s": round(wall, 2), "per_s": round(n / wall)}


def bench_arf(engine, span, n, rng) -> dict:
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    with Session(engine) as s:
        for i, ip in enumerate(addresses(span, n, rng)):
            at = now - timedelta(days=rng.uniform(1, 700), seconds=i)
            raw = ARF.format(n=i, ip=ip, date=at.strftime("%a, %d %b %Y %H:%M:%S +0000"))
            ingest.ingest(s, raw.encode(), actor="bench", kind="arf")
            if i % 500 == 499:
                s.commit()
        s.commit()
    wall = time.perf_counter() - t0
    return {"messages": n, "wall_s": round(wall, 2), "per_s": round(n / wall)}


def run(backend: str, url: str, args) -> dict:
    migrate(url)
    engine = create_engine(url)
    info = load(engine, args.held)
    span = info["span"]
    print(f"{backend}: ledger of {args.held} held loaded in {info['load_s']:.0f} s", flush=True)
    rng = random.Random(5)
    out = {"backend": backend}
    before = rss_mb()
    out["csv_small_batch"] = bench_csv(engine, span, args.csv // 2, args.batch // 5, rng)
    out["rss_after_small_mb"] = round(rss_mb(), 1)
    out["csv"] = bench_csv(engine, span, args.csv, args.batch, rng)
    out["rss_after_large_mb"] = round(rss_mb(), 1)
    out["rss_before_mb"] = round(before, 1)
    out["arf"] = bench_arf(engine, span, args.arf, rng)
    engine.dispose()
    print(f"  {out}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--held", type=int, default=1_000_000)
    parser.add_argument("--csv", type=int, default=100_000)
    parser.add_argument("--arf", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "IPAM_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run("sqlite", f"sqlite:///{tmp}/bench.sqlite3", args)
    if args.backend in ("postgresql", "both"):
        run("postgresql", prepare_postgres(database_url(args.pg_url)), args)


if __name__ == "__main__":
    main()
