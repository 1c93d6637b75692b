"""Abuse intake benchmark: CSV reports and ARF messages ingested end to end on a big ledger.

Loads the core benchmark's ledger (bench/ledger.py: --held single-address
allocations in 10.0.0.0/8 with earlier holders), then ingests CSV reports and
ARF messages about addresses in it, at times spread over the ledger's history,
through ipam.abuse.ingest (parse, attribute at the event's time, case, store):
CSV streamed from a file (ingest_stream), ARF mails from a maildir
(poll_maildir), each ingest in a fresh process. Prints reports per second and
the ingest process's peak memory for a tenth of the batch and the whole batch
(flat memory: the batch size does not matter). Nothing is asserted.

Usage: python bench/abuse.py [--backend sqlite|postgresql|both] [--held 1000000]
       [--csv 100000] [--arf 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ledger import load, migrate, prepare_postgres  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from ipam.abuse import formats, ingest  # noqa: E402
from ipam.db import chunk_done  # noqa: E402
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


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class AnonPeak(threading.Thread):
    """Samples RssAnon every 20 ms: the process's own memory, without the database
    file pages SQLite maps in (those count in VmHWM but are cache, not ours)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = 0.0, threading.Event()

    def run(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, status_mb("RssAnon"))


def addresses(span: int, n: int, rng) -> list[str]:
    """Addresses among the first `span` of 10.0.0.0/8, where the ledger holds most."""
    return [
        f"10.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
        for v in (rng.randrange(span) for _ in range(n))
    ]


def write_csv(path: Path, span: int, n: int, rng) -> None:
    now = datetime.now(UTC)
    with path.open("w") as fh:
        fh.write("address,time,category,description,reporter\n")
        for i, ip in enumerate(addresses(span, n, rng)):
            at = now - timedelta(days=rng.uniform(1, 700), seconds=i)
            fh.write(f"{ip},{at.isoformat()},spam,bench row {i},bench@example.org\n")


def write_maildir(box: Path, span: int, n: int, rng) -> None:
    now = datetime.now(UTC)
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    for i, ip in enumerate(addresses(span, n, rng)):
        at = now - timedelta(days=rng.uniform(1, 700), seconds=i)
        raw = ARF.format(n=i, ip=ip, date=at.strftime("%a, %d %b %Y %H:%M:%S +0000"))
        (box / "new" / f"{i:08d}.bench").write_text(raw)


def child(kind: str, url: str, path: str) -> None:
    """Run one ingest in a fresh process, so its peak memory is the ingest's own."""
    engine = create_engine(url)
    sampler = AnonPeak()
    sampler.start()
    t0 = time.perf_counter()
    if kind == "csv-serial":  # the same, without the read-ahead thread: the baseline
        ingest.READ_AHEAD, kind = False, "csv"
    with Session(engine) as s:
        if kind == "csv":
            with open(path, "rb") as fh:
                result = ingest.ingest_stream(s, fh, actor="bench", chunk_done=chunk_done(s))
        elif kind == "csv-one-by-one":  # the same records stored one at a time: the baseline
            result = ingest.IngestResult()
            with open(path, "rb") as fh:
                for n, rec in enumerate(formats.iter_csv(fh)):
                    ingest.store_many(s, [rec], actor="bench", result=result)
                    if n % 500 == 499:
                        s.commit()
        else:
            result = ingest.poll_maildir(
                s, path, actor="bench", limit=10**9, chunk_done=chunk_done(s)
            )
        s.commit()
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    print(
        json.dumps(
            {
                "stored": result.stored,
                "cases_opened": result.cases_opened,
                "rejected": result.rejected_count,
                "wall_s": round(wall, 2),
                "per_s": round(result.stored / wall),
                "peak_anon_mb": round(max(sampler.peak, status_mb("RssAnon")), 1),
                "peak_rss_mb": round(status_mb("VmHWM"), 1),
            }
        )
    )


def measure(kind: str, url: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--path", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(backend: str, url: str, args) -> dict:
    migrate(url)
    engine = create_engine(url)
    info = load(engine, args.held)
    engine.dispose()
    span = info["span"]
    print(f"{backend}: ledger of {args.held} held loaded in {info['load_s']:.0f} s", flush=True)
    rng = random.Random(5)
    out = {"backend": backend}
    with tempfile.TemporaryDirectory() as tmp:
        for label, n in (("csv_tenth", args.csv // 10), ("csv", args.csv)):
            path = Path(tmp) / f"{label}.csv"
            write_csv(path, span, n, rng)
            out[label] = measure("csv", url, path)
            print(f"  {label}: {out[label]}", flush=True)
            path.unlink()
        if backend == "postgresql":
            # The read-ahead thread against none, alternating, on fresh batches of a tenth.
            rounds = {"read_ahead": [], "serial": []}
            for r in range(4):
                for kind, key in (("csv", "read_ahead"), ("csv-serial", "serial"))[
                    :: 1 - 2 * (r % 2)
                ]:
                    path = Path(tmp) / f"ab-{r}-{key}.csv"
                    write_csv(path, span, max(args.csv // 10, 2 * 2000), rng)
                    rounds[key].append(measure(kind, url, path)["per_s"])
                    path.unlink()
            out["read_ahead_ab"] = {k: sorted(v) for k, v in rounds.items()}
            ratio = statistics.median(rounds["read_ahead"]) / statistics.median(rounds["serial"])
            out["read_ahead_over_serial"] = round(ratio, 2)
            print(f"  read-ahead / serial (reports/s, 4 alternating rounds): {out['read_ahead_ab']}"
                  f" -> {ratio:.2f}x", flush=True)  # fmt: skip
        # Baseline in the same run: records stored one at a time (a query or more each).
        path = Path(tmp) / "one-by-one.csv"
        write_csv(path, span, max(args.csv // 50, 100), rng)
        out["csv_one_by_one"] = measure("csv-one-by-one", url, path)
        out["batched_over_one_by_one"] = round(
            out["csv"]["per_s"] / out["csv_one_by_one"]["per_s"], 1
        )
        print(f"  csv_one_by_one: {out['csv_one_by_one']}", flush=True)
        print(f"  batched / one by one: {out['batched_over_one_by_one']}x", flush=True)
        for label, n in (("arf_tenth", args.arf // 10), ("arf", args.arf)):
            box = Path(tmp) / label
            write_maildir(box, span, n, rng)
            out[label] = measure("maildir", url, box)
            print(f"  {label}: {out[label]}", flush=True)
            shutil.rmtree(box)
    return out


def hostile_and_mixed() -> None:
    """The hostile set (tests/unit/test_abuse_hostile.py) read one file per fresh process:
    time and peak memory beside the file's size; then a mixed batch of every format the
    intake reads, parsed in one process: records per second. Parsing only (no database)."""
    code = (
        "import resource, sys, time\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from tests.unit.test_abuse_hostile import HOSTILE, NOW\n"
        "from ipam.abuse import formats\n"
        "raw, kind, _ = HOSTILE[sys.argv[2]]\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t = time.perf_counter()\n"
        "try:\n    formats.read(raw, NOW, kind)\nexcept formats.FormatError:\n    pass\n"
        "took = time.perf_counter() - t\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base\n"
        "print(len(raw), round(took * 1000, 2), grown)\n"
    )
    sys.path.insert(0, str(ROOT))
    from tests.unit.test_abuse_hostile import HOSTILE

    print("hostile inputs, one per process (bytes, ms, peak memory grown KiB):")
    for name in sorted(HOSTILE):
        done = subprocess.run([sys.executable, "-c", code, str(ROOT), name],
                              capture_output=True, text=True, check=True)  # fmt: skip
        size, ms, kib = done.stdout.split()
        print(f"  {name:34} {int(size):>10,} B {float(ms):>9.2f} ms {int(kib):>8,} KiB")
    from datetime import UTC, datetime

    from ipam.abuse import formats
    from tests.unit.test_abuse_formats_v4 import SHADOW_SCAN, arf, v4, xarf_mail

    samples = ROOT / "tests" / "samples" / "abuse"
    batch = [(samples / n).read_bytes() for n in sorted(os.listdir(samples))]
    batch += [v4(), xarf_mail(header="X-XARF: PLAIN"), arf(with_source_ip=False), SHADOW_SCAN]
    now = datetime(2026, 11, 30, tzinfo=UTC)
    t0, records, rounds = time.perf_counter(), 0, 200
    for _ in range(rounds):
        for raw in batch:
            try:
                records += len(formats.read(raw, now)[0])
            except formats.FormatError:
                pass
    took = time.perf_counter() - t0
    print(f"mixed formats ({len(batch)} inputs of every kind, {rounds} rounds): "
          f"{records / took:,.0f} records/s parsed")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--held", type=int, default=1_000_000)
    parser.add_argument("--csv", type=int, default=100_000)
    parser.add_argument("--arf", type=int, default=10_000)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "IPAM_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--child",
        choices=["csv", "csv-serial", "csv-one-by-one", "maildir"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--hostile", action="store_true", help="hostile and mixed inputs only")
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.path)
        return
    print(f"machine: {os.cpu_count()} cores")
    hostile_and_mixed()
    if args.hostile:
        return
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run("sqlite", f"sqlite:///{tmp}/bench.sqlite3", args)
    if args.backend in ("postgresql", "both"):
        run("postgresql", prepare_postgres(database_url(args.pg_url)), args)


if __name__ == "__main__":
    main()
