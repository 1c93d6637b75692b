"""Sweep and DNS benchmark in the probe lab: our engine against fping, nmap, zmap and dnsperf.

Needs root. Builds the lab's "bench" profile (namespaces ipambench-*): 198.18.0.0/16
answers whole; in 198.19.0.0/16 about 30 % answers, in scattered /28 blocks, the
rest blackholed. Debian's fping, nmap, zmap and dnsperf are installed if missing.

Every tool gets the same targets (each /16; in 198.19.0.0/16 the prober's own
address is left out), one probe per address, no retries, the same timeout
(1 s: zmap's cooldown is whole seconds) and no rate limit. Printed per tool:
wall time, CPU time, probes per second, agreement with the known answering
set, false positives among the blackholed addresses, and our ratio to it.

Then DNS, against the lab's NSD (rate limiting off for the benchmark):
PTR + forward confirmation of all 65,536 addresses of 198.18.0.0/16 by our
engine, the same through zone transfers, dnspython's stock resolver on a
sample, and dnsperf's queries per second on the same server as the ceiling.

Usage: sudo python bench/sweep.py [--timeout 1] [--dns-sample 3000]
Figures are printed (and saved to bench/results/sweep.json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T0 = time.perf_counter()
from probes import dnscheck, lab, netns, sweep  # noqa: E402
from probes.scope import ProbeScope  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T0
TOOLS = {"fping": "fping", "nmap": "nmap", "zmap": "zmap", "dnsperf": "dnsperf"}
PREFIX = "ipambench"


def install_tools() -> None:
    missing = [pkg for pkg, exe in TOOLS.items() if not shutil.which(exe)]
    if missing:
        print(f"installing {', '.join(missing)} from Debian's packages ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)  # fmt: skip


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_tool(cmd: list[str], ns: str) -> tuple[str, float, float]:
    cpu0, t0 = children_cpu(), time.perf_counter()
    out = subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if out.returncode not in (0, 1):  # fping exits 1 when some targets are unreachable
        raise RuntimeError(f"{cmd[0]} failed ({out.returncode}): {out.stderr[-500:]}")
    return out.stdout, wall, cpu


def run_parallel(cmds: list[list[str]], ns: str) -> tuple[str, float, float]:
    """Several processes at once (fping keeps at most 65,535 probes in flight per process)."""
    cpu0, t0 = children_cpu(), time.perf_counter()
    procs = [subprocess.Popen(["ip", "netns", "exec", ns, *c], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in cmds]  # fmt: skip
    outs = [p.communicate() for p in procs]
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    for p, (_, err) in zip(procs, outs, strict=True):
        if p.returncode not in (0, 1):
            raise RuntimeError(f"{cmds[0][0]} failed ({p.returncode}): {err[-500:]}")
    return "".join(o for o, _ in outs), wall, cpu


def ip_set(text: str) -> set[int]:
    return {sweep.pton(4, a) for a in re.findall(r"\b(\d+\.\d+\.\d+\.\d+)\b", text)}


def score(name, found, known, targets, wall, cpu, ours_wall=None):
    blackholed = len(targets) - len(known)
    row = {
        "tool": name,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "probes_per_s": round(len(targets) / wall),
        "answering_found": len(found & known),
        "answering_known": len(known),
        "agreement_pct": round(100 * len(found & known) / len(known), 3),
        "false_positives": len(found - known),
        "blackholed": blackholed,
    }
    if ours_wall is not None:
        row["ours_wall_ratio"] = round(ours_wall / wall, 3)
    return row


def sweeps(the_lab: lab.Lab, timeout: float) -> list[dict]:
    profile = lab.bench_profile()
    known_all = profile.answering_set()
    scope = ProbeScope.parse(",".join(lab.LAB_RANGES))
    prober = sweep.pton(4, lab.PROBER_V4)
    mac = json.loads(
        subprocess.run(
            ["ip", "-n", the_lab.lab_ns, "-j", "link", "show", the_lab.veth_lab],
            capture_output=True,
            text=True,
            check=True,
        ).stdout  # fmt: skip
    )[0]["address"]
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="ipam-sweep-"))
    cold = None
    for label, prefix in (("a: all answer", "198.18.0.0/16"), ("b: ~30% answer", "198.19.0.0/16")):
        first = sweep.pton(4, prefix.split("/")[0])
        targets = [v for v in range(first, first + 65536) if v != prober]
        known = {v for v in known_all if first <= v < first + 65536}
        (tmp / "targets.txt").write_text("\n".join(sweep.ntop(4, v) for v in targets) + "\n")
        half = len(targets) // 2
        for i, part in enumerate((targets[:half], targets[half:])):
            (tmp / f"half{i}.txt").write_text("\n".join(sweep.ntop(4, v) for v in part) + "\n")
        (tmp / "allow.txt").write_text(prefix + "\n")
        (tmp / "block.txt").write_text(f"{lab.PROBER_V4}/32\n")
        print(f"\n== ICMP sweep {label}: {prefix}, {len(targets)} targets, "
              f"{len(known)} answering, timeout {timeout:g} s", flush=True)  # fmt: skip
        rows = []
        with netns.entered(the_lab.probe_ns):
            if cold is None:  # the first sweep of a fresh process: sockets, templates
                c0, k0, t0 = self_cpu(), children_cpu(), time.perf_counter()
                got = sweep.icmp_answering(4, targets, scope=scope, timeout=timeout)
                cold = (time.perf_counter() - t0, self_cpu() - c0 + children_cpu() - k0)
            c0, k0, t0 = self_cpu(), children_cpu(), time.perf_counter()
            got = sweep.icmp_answering(4, targets, scope=scope, timeout=timeout)
            wall = time.perf_counter() - t0
            cpu = self_cpu() - c0 + children_cpu() - k0  # the forked helper's too
        ours = score("ipam (warm)", set(got), known, targets, wall, cpu)
        rows.append(ours)
        ms = int(timeout * 1000)
        # fping 5.1 refuses 65,535 targets in one process (its sequence map is that
        # size): two processes, half the targets each, side by side (one per core).
        out, w, c = run_parallel(
            [["fping", "-a", "-q", "-r", "0", "-i", "0", "-t", str(ms), "-f", str(tmp / f)]
             for f in ("half0.txt", "half1.txt")],
            the_lab.probe_ns,
        )  # fmt: skip
        rows.append(score("fping -r0 -i0 (x2)", ip_set(out), known, targets, w, c, wall))
        out, w, c = run_tool(
            ["nmap", "-sn", "-PE", "-n", "--max-retries", "0", "--max-rtt-timeout", f"{ms}ms",
             "--initial-rtt-timeout", f"{ms}ms", "-iL", str(tmp / "targets.txt"), "-oG", "-"],
            the_lab.probe_ns,
        )  # fmt: skip
        up = {sweep.pton(4, m) for m in re.findall(r"Host: (\d+\.\d+\.\d+\.\d+) .*Status: Up", out)}
        rows.append(score("nmap -sn -PE", up, known, targets, w, c, wall))
        out, w, c = run_tool(
            ["zmap", "-M", "icmp_echoscan", "-i", the_lab.veth_probe, "-G", mac,
             "-S", lab.PROBER_V4, "-w", str(tmp / "allow.txt"), "-b", str(tmp / "block.txt"),
             "-r", "10000000", "-c", str(max(1, round(timeout))), "-q", "-v", "0",
             "-o", str(tmp / "zmap.txt")],
            the_lab.probe_ns,
        )  # fmt: skip
        rows.append(score("zmap icmp_echoscan", ip_set((tmp / "zmap.txt").read_text()), known,
                          targets, w, c, wall))  # fmt: skip
        for r in rows:
            ratio = (
                f"  ours/theirs wall {r['ours_wall_ratio']:.2f}" if "ours_wall_ratio" in r else ""
            )
            print(f"  {r['tool']:20} wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:6.2f} s  "
                  f"{r['probes_per_s']:8d} probes/s  agreement {r['agreement_pct']:7.3f} %  "
                  f"false positives {r['false_positives']}{ratio}")  # fmt: skip
        results.append({"sweep": label, "prefix": prefix, "rows": rows})
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ncold start: import probes {IMPORT_SECONDS:.2f} s; first sweep {cold[0]:.2f} s wall, "
          f"{cold[1]:.2f} s CPU")  # fmt: skip
    results.append({"cold_start": {"import_s": round(IMPORT_SECONDS, 3),
                                   "first_sweep_wall_s": round(cold[0], 3),
                                   "first_sweep_cpu_s": round(cold[1], 3)}})  # fmt: skip
    return results


def dns_bench(the_lab: lab.Lab, sample: int) -> dict:
    import dns.resolver
    import dns.reversename

    server = lab.DNS_SERVER
    first = sweep.pton(4, "198.18.0.0")
    targets = list(range(first, first + 65536))
    out: dict = {}
    print(f"\n== DNS: PTR + forward confirmation of {len(targets)} addresses, NSD, no RRL")
    with netns.entered(the_lab.probe_ns):
        c0, t0 = self_cpu(), time.perf_counter()
        res = dnscheck.check_reverse(4, targets, server=server, timeout=1.0)
        wall, cpu = time.perf_counter() - t0, self_cpu() - c0
        ok = sum(1 for r in res if r.confirmed)
        out["engine"] = {"addresses": len(targets), "wall_s": round(wall, 3),
                         "cpu_s": round(cpu, 3), "addresses_per_s": round(len(targets) / wall),
                         "confirmed": ok}  # fmt: skip
        print(f"  ipam engine      {wall:6.2f} s  {len(targets) / wall:9.0f} addresses/s "
              f"({2 * len(targets) / wall:.0f} queries/s)  confirmed {ok}")  # fmt: skip
        c0, t0 = self_cpu(), time.perf_counter()
        axfr = dnscheck.reverse_by_transfer(4, targets, ["18.198.in-addr.arpa"],
                                            ["bench.example"], server=server)  # fmt: skip
        wall_x = time.perf_counter() - t0
        same = sum(1 for a, b in zip(res, axfr, strict=True)
                   if (a.ptr, a.confirmed) == (b.ptr, b.confirmed))  # fmt: skip
        out["zone_transfer"] = {"wall_s": round(wall_x, 3), "cpu_s": round(self_cpu() - c0, 3),
                                "addresses_per_s": round(len(targets) / wall_x),
                                "same_answers": same}  # fmt: skip
        print(f"  zone transfer    {wall_x:6.2f} s  {len(targets) / wall_x:9.0f} addresses/s  "
              f"same answers as the queries: {same}/{len(targets)}")  # fmt: skip
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [server]
        r.lifetime = 2.0
        picked = targets[:: max(1, len(targets) // sample)][:sample]
        t0 = time.perf_counter()
        confirmed = 0
        for v in picked:
            text = sweep.ntop(4, v)
            name = r.resolve(dns.reversename.from_address(text), "PTR")[0].target.to_text()
            confirmed += any(a.to_text() == text for a in r.resolve(name, "A"))
        wall_s = time.perf_counter() - t0
    stock = len(picked) / wall_s
    out["dnspython_stock"] = {"addresses": len(picked), "wall_s": round(wall_s, 3),
                              "addresses_per_s": round(stock), "confirmed": confirmed}  # fmt: skip
    print(f"  dnspython stock  {wall_s:6.2f} s  {stock:9.0f} addresses/s (sample of {len(picked)})"
          f"  -> ours is {out['engine']['addresses_per_s'] / stock:.1f}x")  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for v in targets:
            f.write(f"{sweep.ntop(4, v)}.in-addr.arpa PTR\n".replace(
                sweep.ntop(4, v), ".".join(reversed(sweep.ntop(4, v).split(".")))))  # fmt: skip
        qfile = f.name
    text_out, wall_p, _ = run_tool(["dnsperf", "-s", server, "-d", qfile, "-l", "10", "-c", "4",
                                    "-q", "2000"], the_lab.probe_ns)  # fmt: skip
    os.unlink(qfile)
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", text_out).group(1))
    out["dnsperf"] = {"queries_per_s": round(qps), "addresses_per_s_ceiling": round(qps / 2)}
    print(f"  dnsperf          {qps:9.0f} queries/s -> ceiling {qps / 2:.0f} addresses/s "
          f"(two queries each); ours reaches "
          f"{100 * out['engine']['addresses_per_s'] / (qps / 2):.0f} % of it")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--dns-sample", type=int, default=3000)
    args = parser.parse_args()
    why = lab.can_run()
    if why:
        sys.exit(f"cannot build the lab: {why}")
    install_tools()
    the_lab = lab.Lab(PREFIX)
    t0 = time.perf_counter()
    the_lab.up("bench", rrl=0)
    print(f"lab up (bench profile) in {time.perf_counter() - t0:.1f} s; cores: {os.cpu_count()}")
    try:
        results = {"cores": os.cpu_count(), "sweeps": sweeps(the_lab, args.timeout),
                   "dns": dns_bench(the_lab, args.dns_sample)}  # fmt: skip
    finally:
        the_lab.down()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(results, indent=2))
    print(f"\nsaved to {out / 'sweep.json'}")


if __name__ == "__main__":
    main()
