"""Report benchmark: every report in every format at two ledger sizes tenfold apart, and
certificates issued and verified per second.

For each size an SQLite file (or a PostgreSQL database of the run's own) is bulk-loaded the
way bench/ledger.py does, with 10,000 customers: --held H current single addresses in a /8
(each with two earlier holders: 3H rows), H /64s in a /32, and a tenth of the /8's current
addresses sub-leased. H = 250,000 gives 1,000,000 allocation rows and 25,000 subleases.

Each (report, format) runs in a child process of its own, which prints its time, rows and
peak anonymous memory (RssAnon, sampled; the database's mapped pages are not counted). A
streamed report's memory must stay flat when the ledger grows tenfold: the ratios printed
compare the two sizes (RssAnon includes SQLite's page cache, up to the 64 MB ipam sets; a
CSV run under tracemalloc gives Python's own peak apart). Beside them, in the same run: the
IP filing report built in memory first (the rows as a list, then the CSV), as the peer.
A PDF holds at most IPAM_REPORT_PDF_MAX_ROWS rows: past that it is refused (timed too), and
one customer's PDF is measured instead.

Usage: python bench/reports.py [--held 25000,250000] [--backend sqlite|postgresql]
Figures are printed (and saved to bench/results/reports.json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PG = os.environ.get("IPAM_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
FORMATS = ("csv", "xlsx", "pdf")
PERIOD = {"start": "2022-12-01", "end": "2025-12-31"}  # the bench ledger's history


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class AnonPeak(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = status_mb("RssAnon"), threading.Event()

    def run(self):
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, status_mb("RssAnon"))


def child(url: str, name: str, fmt: str, customer: str | None, mode: str) -> None:
    """One report in one format, measured in this process; prints one JSON line."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from ipam.errors import IpamError
    from ipam.listing import EVERYONE
    from ipam.reports import prepare, rows
    from ipam.reports.issued import export
    from web import database_url

    engine = create_engine(database_url(url))
    if mode == "traced":  # Python's own allocations only (SQLite's 64 MB page cache aside)
        import tracemalloc

        tracemalloc.start()
    base = status_mb("RssAnon")
    peak = AnonPeak()
    peak.start()
    out = {"report": name, "format": fmt, "customer": customer, "mode": mode}
    t0 = time.perf_counter()
    with Session(engine) as s, tempfile.TemporaryFile() as sink:
        asked = dict(PERIOD) if name not in ("ip_filing", "sublessees", "clause6") else {}
        try:
            report, params = prepare(
                s, name, EVERYONE, zone="Asia/Shanghai", customer=customer, **asked
            )
            if mode == "in-memory":  # the peer: every row in a list first, then the file
                import csv

                from ipam.reports.files import cell, headings

                data = list(rows(s, report, params, EVERYONE))
                text = io.StringIO()
                writer = csv.writer(text)
                from zoneinfo import ZoneInfo

                zone = ZoneInfo(params.zone)
                writer.writerow(headings(report, "zh", zone))
                for row in data:
                    writer.writerow(
                        [cell(c, v, "zh", zone) for c, v in zip(report.columns, row, strict=True)]
                    )
                sink.write(text.getvalue().encode("utf-8-sig"))
                out["rows"] = len(data)
            else:
                out["rows"] = export(s, report, params, fmt, "zh", sink, actor="bench")
            out["bytes"] = sink.tell()
        except IpamError as exc:
            out["refused"] = f"{exc.field}: {exc.message}"
    out["seconds"] = round(time.perf_counter() - t0, 2)
    peak.stop.set()
    peak.join()
    out["peak_mb"] = round(peak.peak - base, 1)
    if mode == "traced":
        out["python_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    print(json.dumps(out))


def measure(url: str, name: str, fmt: str, customer=None, mode="stream") -> dict:
    cmd = [sys.executable, __file__, "--child", url, name, fmt, customer or "", mode]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        return {"report": name, "format": fmt, "error": done.stderr[-400:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def certificates(url: str, n: int) -> dict:
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from ipam import certificates as certs
    from ipam.models import Allocation
    from web import database_url

    engine = create_engine(database_url(url))
    with tempfile.TemporaryDirectory() as keys, Session(engine) as s:
        ring = certs.Keyring(keys)
        ring.init()
        firsts = s.scalars(
            select(Allocation.first).where(Allocation.valid_to.is_(None), Allocation.family == 4)
            .limit(n)
        ).all()  # fmt: skip
        addresses = [".".join(str(b) for b in f[-4:]) for f in firsts]
        t0 = time.perf_counter()
        made = []
        for a in addresses:
            _record, content = certs.issue(s, a, None, actor="bench", keyring=ring, issuer="bench")
            made.append(content)
        s.commit()
        issue_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ok = sum(certs.verify(c, ring, session=s).ok for c in made)
        verify_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        offline = sum(certs.verify(c, ring).ok for c in made)
        offline_s = time.perf_counter() - t0
    return {
        "n": len(made),
        "issue_per_s": round(len(made) / issue_s, 1),
        "verify_per_s": round(ok / verify_s, 1),
        "verify_offline_per_s": round(offline / offline_s, 1),
    }


def audit_rows(engine, n: int) -> None:
    """An audit log of n entries inside the period (the loader writes none); the report reads
    them, it does not verify the chain, so the hashes are placeholders."""
    import json as _json
    from datetime import UTC, datetime, timedelta

    from ledger import bulk_rows

    from ipam.models import AuditHead, AuditLog

    start = datetime(2024, 6, 1, tzinfo=UTC).replace(tzinfo=None)
    bulk_rows(
        engine,
        AuditLog.__table__,
        (
            {
                "seq": i, "recorded_at": start + timedelta(seconds=i), "actor": "bench",
                "action": "allocation.add", "object_type": "allocation", "object_id": i,
                "data": _json.dumps({"prefix": f"10.0.{i >> 8 & 255}.{i & 255}",
                                     "contacts": [{"name": "x", "phone": "+8613800138000"}]}),
                "prev_hash": "0" * 64, "hash": f"{i:064x}",
            }
            for i in range(1, n + 1)
        ),
    )  # fmt: skip
    from sqlalchemy import update

    with engine.begin() as conn:
        conn.execute(
            update(AuditHead).where(AuditHead.id == 1).values(seq=n, last_hash=f"{n:064x}")
        )


def run_size(backend: str, held: int, tmp: Path) -> dict:
    import ledger
    from ledger import load, migrate, prepare_postgres
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from ipam.models import Customer
    from web import database_url

    ledger.CUSTOMERS = 10_000
    url = prepare_postgres(PG) if backend == "postgresql" else f"sqlite:///{tmp}/reports-{held}.db"
    migrate(url)
    engine = create_engine(database_url(url))
    info = load(engine, held)
    audit_rows(engine, held // 4)
    with Session(engine) as s:
        one = s.scalar(select(Customer.id).order_by(Customer.id).limit(1))
    engine.dispose()
    print(f"\n{backend}, {held:,} held: loaded in {info['load_s'] + info['rebuild_s']:.0f} s")
    from ipam.reports import REPORTS

    results = []
    for name in REPORTS:
        for fmt in FORMATS:
            r = measure(url, name, fmt)
            if fmt == "pdf" and "refused" in r:
                r["one_customer"] = measure(url, name, fmt, customer=str(one))
            if fmt == "csv":
                r["python_peak_mb"] = measure(url, name, fmt, mode="traced").get("python_peak_mb")
            results.append(r)
            show(r)
    peer = measure(url, "ip_filing", "csv", mode="in-memory")
    show(peer)
    return {"held": held, "results": results, "in_memory_peer": peer, "certificates": None,
            "url": url}  # fmt: skip


def show(r: dict) -> None:
    if "error" in r:
        print(f"  {r['report']:18} {r['format']:5} ERROR {r['error'][-200:]}")
        return
    what = f"{r.get('rows', 0):>9,} rows {r['seconds']:7.2f} s {r['peak_mb']:7.1f} MB"
    if "refused" in r:
        what = f"refused in {r['seconds']:.2f} s ({r['refused'][:60]}…)"
        one = r.get("one_customer") or {}
        if one and "rows" in one:
            what += f"; one customer: {one['rows']} rows {one['seconds']} s {one['peak_mb']} MB"
    if r.get("python_peak_mb") is not None:
        what += f" (Python {r['python_peak_mb']} MB)"
    rate = ""
    if r.get("rows") and r["seconds"]:
        rate = f" {r['rows'] / r['seconds']:>9,.0f} rows/s"
    print(f"  {r['report']:18} {r['format'] if r['mode'] == 'stream' else 'csv*':5} {what}{rate}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", default="25000,250000")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--certificates", type=int, default=300)
    parser.add_argument("--child", nargs=5, metavar=("URL", "NAME", "FORMAT", "CUSTOMER", "MODE"))
    args = parser.parse_args()
    if args.child:
        url, name, fmt, customer, mode = args.child
        child(url, name, fmt, customer or None, mode)
        return
    sizes = [int(x) for x in args.held.split(",")]
    print(f"reports on {args.backend}, {os.cpu_count()} cores; sizes {sizes} held")
    runs = []
    with tempfile.TemporaryDirectory(prefix="ipam-bench-reports-") as tmp:
        for held in sizes:
            run = run_size(args.backend, held, Path(tmp))
            run["certificates"] = certificates(run.pop("url"), args.certificates)
            c = run["certificates"]
            print(f"  certificates: issue {c['issue_per_s']}/s, verify {c['verify_per_s']}/s "
                  f"(with the database), {c['verify_offline_per_s']}/s offline")  # fmt: skip
            runs.append(run)
    if len(runs) >= 2:
        small, large = runs[0], runs[-1]
        factor = large["held"] / small["held"]
        print(f"\nlarge / small ({factor:.0f}x the ledger): peak memory and time")
        for a, b in zip(small["results"], large["results"], strict=True):
            if "rows" not in a or "rows" not in b or "refused" in b:
                continue
            mem = b["peak_mb"] / a["peak_mb"] if a["peak_mb"] > 0 else float("nan")
            t = b["seconds"] / a["seconds"] if a["seconds"] else float("nan")
            py = ""
            if a.get("python_peak_mb") and b.get("python_peak_mb"):
                py = f"  Python heap {b['python_peak_mb'] / a['python_peak_mb']:5.2f}x"
            print(f"  {a['report']:18} {a['format']:5} memory {mem:5.2f}x  time {t:6.2f}x{py}")
        for run in runs:
            p = run["in_memory_peer"]
            s = next(
                r for r in run["results"] if r["report"] == "ip_filing" and r["format"] == "csv"
            )
            if "rows" in p and p["peak_mb"]:
                print(f"  ip_filing CSV at {run['held']:,} held: streamed {s['peak_mb']} MB, "
                      f"built in memory {p['peak_mb']} MB "
                      f"({p['peak_mb'] / max(s['peak_mb'], 0.1):.1f}x)")  # fmt: skip
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "reports.json").write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
