"""Beyond one host (issue 17): probe runs through Celery on Redis, and reads on a replica.

Everything is the benchmark's own: a PostgreSQL database (created, dropped at the end), a
redis-server on a free port, a lab (namespaces ipbw-*, the "bench" profile: 198.18.0.0/16
answers whole) standing for one site's network, and `ipam scheduler` / `ipam worker`
processes as an operator starts them. Root is needed (namespaces, raw sockets).

  * probe throughput: 16 schedules, one per /20 of 198.18.0.0/16 (ICMP), queued at once
    and carried out by 1, 2 and 4 worker processes of the site: wall time, runs/s,
    addresses/s, and each against 1 worker (measured in the same run);
  * "Run now" to the run starting at a worker, 10 times on an idle worker: handed to the
    broker at the request (as the UI, API and CLI do) against left to the scheduler's
    next pass (its dispatcher wakes every 2 s);
  * with --replica: allocations over HTTP (gunicorn, 8 clients) while 2 clients pull the
    IP-filing report as CSV over a ledger of --held allocations, the report reads on the
    primary against on a pg_basebackup replica of the cluster (port of its own, removed).

Usage: sudo python bench/workers.py [--replica] [--held 20000] [--seconds 15]
Figures are printed (and saved to bench/results/workers.json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ledger import migrate, pct, prepare_postgres  # noqa: E402

from ipam import customers, datacentres, pools, probing, users  # noqa: E402
from ipam.db import transaction  # noqa: E402
from ipam.jobs import broker  # noqa: E402
from ipam.models import ProbeRun  # noqa: E402
from probes import lab as lab_module  # noqa: E402
from web import database_url  # noqa: E402

PG = os.environ.get("IPAM_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IPAM = str(Path(sys.executable).parent / "ipam")
SITE = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """The benchmark's database, Redis and processes."""

    def __init__(self, url: str, lab: lab_module.Lab):
        self.url, self.lab = url, lab
        self.engine = create_engine(url)
        self.redis_port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.5)
        self.config = {
            "IPAM_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "IPAM_WORKER_HEARTBEAT": "2",
            "IPAM_BROKER_RESEND": "30",
        }
        self.env = {
            **os.environ, **self.config, "IPAM_DATABASE_URL": url,
            "IPAM_SECRET_KEY": "bench", "IPAM_INSTANCE_PATH": "/tmp",
        }  # fmt: skip
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []

    def spawn(self, *args, env=None) -> subprocess.Popen:
        proc = subprocess.Popen(
            [IPAM, *args], env={**self.env, **(env or {})}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def start_workers(self, n: int) -> None:
        for _ in range(n):
            self.workers.append(
                self.spawn(
                    "worker",
                    "--site",
                    SITE,
                    "--no-jobs",
                    "--loglevel",
                    "WARNING",
                    env=self.lab.settings(),
                )  # fmt: skip
            )
        want = {f":{w.pid}" for w in self.workers}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # every worker beat, and is consuming
            with Session(self.engine) as s:
                live = datacentres.health(s, self.config)
            names = {n for h in live for n in h.live}
            if all(any(n.endswith(p) for n in names) for p in want):
                time.sleep(1.0)
                return
            time.sleep(0.2)
        raise SystemExit("workers did not start")

    def stop_workers(self) -> None:
        for w in self.workers:
            os.killpg(w.pid, signal.SIGTERM)
        for w in self.workers:
            w.wait(60)
        self.workers = []

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        self.redis.terminate()
        self.redis.wait(10)
        self.engine.dispose()


def seed(url: str) -> dict:
    engine = create_engine(url)
    with Session(engine) as s, transaction(s):
        datacentres.add(s, SITE, actor="bench")
        top = pools.add_pool(s, "198.18.0.0/16", "bench /16", actor="bench")
        datacentres.place_pool(s, top, SITE, actor="bench")
        schedules = []
        for n in range(16):
            child = pools.add_pool(s, f"198.18.{n * 16}.0/20", f"bench /20 #{n}", actor="bench")
            schedules.append(
                probing.add_schedule(
                    s, {"name": f"sweep {n}", "pool": child.id, "cron": "0 0 1 1 *",
                        "methods": ["icmp"], "enabled": False}, actor="bench",
                ).id
            )  # fmt: skip
        small = pools.add_pool(s, "198.19.0.0/24", "bench /24", actor="bench")
        datacentres.place_pool(s, small, SITE, actor="bench")
        quick = probing.add_schedule(
            s, {"name": "quick", "pool": small.id, "cron": "0 0 1 1 *", "methods": ["icmp"],
                "enabled": False}, actor="bench",
        ).id  # fmt: skip
    engine.dispose()
    return {"schedules": schedules, "quick": quick}


def queue(stack: Stack, schedule_ids, *, hand_over: bool = True) -> list[int]:
    with Session(stack.engine) as s, transaction(s):
        ids = [probing.request_run(s, sid, actor="bench").id for sid in schedule_ids]
    if hand_over:
        broker.hand_over(stack.engine, stack.config)
    return ids


def wait_done(stack: Stack, run_ids: list[int], timeout: float = 600) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(stack.engine) as s:
            runs = list(s.scalars(select(ProbeRun).where(ProbeRun.id.in_(run_ids))))
        if all(r.status in ("done", "failed") for r in runs):
            return runs
        time.sleep(0.05)
    raise SystemExit(f"runs {run_ids} did not end")


def throughput(stack: Stack, ids: dict, workers: int) -> dict:
    stack.start_workers(workers)
    t0 = time.perf_counter()
    runs = wait_done(stack, queue(stack, ids["schedules"]))
    wall = time.perf_counter() - t0
    stack.stop_workers()
    targets = sum(r.targets for r in runs)
    return {
        "workers": workers,
        "runs": len(runs),
        "failed": sum(r.status == "failed" for r in runs),
        "wall_s": round(wall, 2),
        "runs_per_s": round(len(runs) / wall, 2),
        "addresses_per_s": round(targets / wall),
        "by_worker": sorted({r.claimed_by.rsplit(":", 1)[1] for r in runs if r.claimed_by}),
    }


def run_now(stack: Stack, ids: dict, hand_over: bool, times: int = 10) -> dict:
    waits = []
    for _ in range(times):
        (run_id,) = queue(stack, [ids["quick"]], hand_over=hand_over)
        (run,) = wait_done(stack, [run_id])
        waits.append((run.started_at - run.queued_at).total_seconds())
    return {
        "handed_over_at_request": hand_over,
        "p50_ms": round(statistics.median(waits) * 1000, 1),
        "max_ms": round(max(waits) * 1000, 1),
    }


# --------------------------------------------------------------------------- replica


def replica_bench(args) -> dict:
    from ipam import allocation
    from tests.replica import Replica

    url = prepare_postgres(database_url(PG))
    migrate(url)
    engine = create_engine(url)
    with Session(engine, expire_on_commit=False) as s, transaction(s):
        users.create_user(s, "bench", "bench-password", "engineer", actor="bench")
        token = users.issue_token(s, "bench", "bench", actor="bench")[1]
        cust = customers.add_customer(
            s, {"name": "基准测试有限公司", "uscc": "91110108MA01C8XK7H", "kind": "hosting"},
            actor="bench",
        )  # fmt: skip
        big = pools.add_pool(s, "198.18.0.0/15", "held", actor="bench")
        live = pools.add_pool(s, "2001:db8::/32", "live", actor="bench")
    with Session(engine) as s:  # the report's rows: --held allocations, in chunks
        done = 0
        while done < args.held:
            step = min(2000, args.held - done)
            with transaction(s):
                for _ in range(step):
                    allocation.allocate(s, big.id, cust.id, actor="bench")
            done += step
    engine.dispose()
    out = {}
    replica = Replica()
    try:
        replica.start(PG)
        for where in ("primary", "replica"):
            extra = (
                {"IPAM_DATABASE_REPLICA_URL": replica.url_for(url)} if where == "replica" else {}
            )
            out[where] = http_mix(url, extra, token, live.id, cust.id, args.seconds)
            print(f"reports on the {where}: {json.dumps(out[where])}")
    finally:
        replica.stop()
    out["replica_vs_primary"] = round(
        out["replica"]["allocations_per_s"] / out["primary"]["allocations_per_s"], 2
    )
    out["primary_cpu_replica_vs_primary"] = round(
        out["replica"]["primary_cpu_s"] / max(out["primary"]["primary_cpu_s"], 0.1), 2
    )
    return out


def primary_cpu() -> float:
    """CPU seconds used so far by the running cluster's processes (its cluster_name, e.g.
    "15/main", is in their titles; the replica made here has none)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if cmd.startswith(b"postgres: ") and b"/main" in cmd.split(b":")[1]:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def http_mix(url, extra, token, pool_id, customer_id, seconds) -> dict:
    port = free_port()
    env = {**os.environ, "IPAM_DATABASE_URL": url, "IPAM_SECRET_KEY": "bench", **extra}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-w", str(os.cpu_count() or 2),
         "-k", "gthread", "--threads", "6", "-b", f"127.0.0.1:{port}", "--log-level",
         "warning", "web.wsgi:app"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/login")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        stop = time.perf_counter() + seconds
        lat, reports = [], []

        def allocate():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = json.dumps({"pool": pool_id, "customer": customer_id, "prefixlen": 64})
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                c.request("POST", "/api/v1/allocations", body=body, headers=headers)
                r = c.getresponse()
                r.read()
                if r.status == 201:
                    lat.append(time.perf_counter() - t0)

        def report():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                c.request("GET", "/api/v1/reports/ip_filing?format=csv", headers=headers)
                r = c.getresponse()
                r.read()
                reports.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=allocate) for _ in range(8)]
        threads += [threading.Thread(target=report) for _ in range(2)]
        cpu0 = primary_cpu()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        return {
            "primary_cpu_s": round(primary_cpu() - cpu0, 1),
            "allocations_per_s": round(len(lat) / wall, 1),
            "alloc_p50_ms": round(pct(lat, 50) * 1000, 1),
            "alloc_p99_ms": round(pct(lat, 99) * 1000, 1),
            "reports": len(reports),
            "report_median_s": round(statistics.median(reports), 2) if reports else None,
        }
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replica", action="store_true")
    parser.add_argument("--held", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--only-replica", action="store_true", help="skip the probe figures")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    out: dict = {"cores": os.cpu_count()}
    if args.only_replica:
        out["replica"] = replica_bench(args)
        return print(json.dumps(out["replica"], indent=1))
    why = lab_module.can_run()
    if why:
        raise SystemExit(why)
    url = prepare_postgres(database_url(PG))
    migrate(url)
    ids = seed(url)
    lab = lab_module.Lab("ipbw", only=["198.18.0.0/16", "198.19.0.0/24"])
    lab.up("bench")
    stack = Stack(url, lab)
    try:
        stack.spawn("scheduler")
        out["throughput"] = []
        for n in [int(x) for x in args.workers.split(",")]:
            row = throughput(stack, ids, n)
            out["throughput"].append(row)
            base = out["throughput"][0]["runs_per_s"]
            print(f"{n} worker(s): {json.dumps(row)}  vs 1 worker: {row['runs_per_s'] / base:.2f}x")
        stack.start_workers(1)
        fast = run_now(stack, ids, hand_over=True)
        slow = run_now(stack, ids, hand_over=False)
        out["run_now"] = [fast, slow]
        print(f"Run now -> started at the worker: {json.dumps(fast)}")
        print(f"left to the scheduler's pass:      {json.dumps(slow)}")
        print(f"  at request / scheduler pass (p50): {fast['p50_ms'] / slow['p50_ms']:.2f}x")
    finally:
        stack.close()
        lab.down()
    if args.replica:
        out["replica"] = replica_bench(args)
        ratio = out["replica"]["replica_vs_primary"]
        cpu = out["replica"]["primary_cpu_replica_vs_primary"]
        print(f"allocations/s, reports on the replica vs on the primary: {ratio}x")
        print(f"the primary's CPU, reports on the replica vs on the primary: {cpu}x")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "workers.json").write_text(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
