"""The probe lab: network namespaces that answer for the lab ranges, and nothing else.

Two namespaces joined by one veth pair:

    <prefix>-probe   the probing side. Its only routes lead into the lab
                     (198.18.0.0/15 and 2001:db8::/32), so nothing can leave.
    <prefix>-lab     the targets. Whole prefixes answer through `local`
                     routes on lo; silent prefixes are blackholed; a few
                     addresses listen on TCP ports; NSD (Debian's package)
                     serves the reverse, forward and blocklist zones.

Only 198.18.0.0/15 and 2001:db8::/32 are used (never the machines' own
networks; see DESIGN.md, "Probe safety"). The two sides
talk over IPv6 link-local next hops, so no address outside the lab ranges
is configured anywhere, and one neighbour entry serves every target.

Profiles: "demo" matches the demo ledger (ipam/demo.py) so every finding kind
shows up; "bench" is what bench/sweep.py measures (an all-answering /16 and a
/16 of which about 30 % answers in scattered /28 blocks).
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from netaddr import IPAddress, IPNetwork

PROBER_V4 = "198.19.255.254"
PROBER_V6 = "2001:db8:ffff::1"
DNS_SERVER = "2001:db8:ffff::53"
LAB_RANGES = ("198.18.0.0/15", "2001:db8::/32")
BLOCKLIST_ZONE = "bl.lab.test"
_LL_PROBE = "fe80::1"
_LL_LAB = "fe80::2"
STATE_ROOT = Path("/run/ipam-lab")


@dataclass
class Profile:
    """What the lab answers: routes, open ports and DNS data."""

    name: str
    answering: list[str]
    open_ports: dict[str, tuple[int, ...]] = field(default_factory=dict)
    ptr: dict[str, str] = field(default_factory=dict)  # address -> name
    forward: dict[str, list[str]] = field(default_factory=dict)  # name -> addresses
    blocklist: dict[str, tuple[str, str]] = field(default_factory=dict)  # address -> (A, TXT)
    bulk_ptr: list[str] = field(default_factory=list)  # /16s with a PTR + A for every address

    def answering_set(self) -> set[int]:
        """Every IPv4 address that answers (for checking sweeps against)."""
        out: set[int] = set()
        for prefix in self.answering:
            net = IPNetwork(prefix)
            if net.version == 4:
                out.update(range(net.first, net.last + 1))
        return out


def demo_profile() -> Profile:
    """Addresses chosen against the demo ledger so each rule fires for the right holder."""
    ptr = {
        "198.18.7.1": "gw.xinghe.example",
        "198.18.7.9": "www.liming-blog.example",  # the sublessee's registered domain
        "198.18.7.10": "shop.unregistered-party.example",  # nobody registered this one
        "198.18.7.11": "mail.xinghe.example",  # forward lookup disagrees
        "198.18.7.130": "nas.yunfan.example",
        "198.19.0.1": "vps1.xinghe.example",
        "2001:db8:100::1": "v6.xinghe.example",
    }
    forward = {name: [addr] for addr, name in ptr.items()}
    forward["mail.xinghe.example"] = ["198.18.7.99"]
    return Profile(
        name="demo",
        answering=[
            "198.18.7.0/28",  # 上海星河 dedicated servers (198.18.7.9: 李明's blog)
            "198.18.7.200/32",  # reclaimed from 北京云帆, answering anyway
            "198.18.9.20/32",  # never allocated: a squatter
            "198.18.7.128/28",  # 北京云帆's current /26 (198.18.7.128/26), partly in use
            "198.19.0.0/26",  # 上海星河 shared hosting
            "198.19.10.5/32",  # 深圳远航 exited: its block is in quarantine
            "2001:db8:100::/124",  # 上海星河 IPv6
        ],
        open_ports={"198.18.7.9": (80, 443), "198.19.0.1": (22, 80), "2001:db8:100::1": (443,)},
        ptr=ptr,
        forward=forward,
        blocklist={
            "198.18.7.12": ("127.0.0.2", "listed: spam source (lab blocklist)"),
            "198.18.9.20": ("127.0.0.4", "listed: scanning (lab blocklist)"),
            # RFC 5782 error answer (e.g. "queries via public resolvers refused"): no listing.
            "198.18.7.13": ("127.255.255.254", "error: query refused"),
        },
    )


def bench_profile(seed: int = 2026) -> Profile:
    """198.18.0.0/16 answers whole; in 198.19.0.0/16 about 30 % of the /28 blocks answer."""
    rng = random.Random(seed)
    blocks = list(range(4096 - 1))  # the last /28 holds the prober itself
    chosen = sorted(rng.sample(blocks, round(4096 * 0.30)))
    base = int(IPAddress("198.19.0.0"))
    answering = ["198.18.0.0/16"] + [f"{IPAddress(base + b * 16)}/28" for b in chosen]
    return Profile(name="bench", answering=answering, bulk_ptr=["198.18.0.0/16"])


PROFILES = {"demo": demo_profile, "bench": bench_profile}


# --------------------------------------------------------------------------- zones


def _reverse_name(address: str) -> str:
    return IPAddress(address).reverse_dns.rstrip(".")


def _zone_of(name: str, zones: list[str]) -> str | None:
    best = None
    for zone in zones:
        if (name == zone or name.endswith("." + zone)) and (not best or len(zone) > len(best)):
            best = zone
    return best


def zone_files(profile: Profile) -> dict[str, str]:
    """Zone name -> master file text for NSD."""
    reverse = ["18.198.in-addr.arpa", "19.198.in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa"]
    forward = sorted({".".join(n.split(".")[-2:]) for n in profile.forward} | {"bench.example"})
    zones = reverse + forward + [BLOCKLIST_ZONE]
    records: dict[str, list[str]] = {z: [] for z in zones}
    for address, name in profile.ptr.items():
        owner = _reverse_name(address)
        records[_zone_of(owner, zones)].append(f"{owner}. 300 IN PTR {name}.")
    for name, addresses in profile.forward.items():
        for address in addresses:
            rtype = "AAAA" if ":" in address else "A"
            records[_zone_of(name, zones)].append(f"{name}. 300 IN {rtype} {address}")
    for address, (answer, txt) in profile.blocklist.items():
        owner = ".".join(reversed(address.split("."))) + "." + BLOCKLIST_ZONE
        records[BLOCKLIST_ZONE].append(f"{owner}. 300 IN A {answer}")
        records[BLOCKLIST_ZONE].append(f'{owner}. 300 IN TXT "{txt}"')
    for prefix in profile.bulk_ptr:
        net = IPNetwork(prefix)
        rz = _zone_of(_reverse_name(str(net[0])), zones)
        for value in range(net.first, net.last + 1):
            a = IPAddress(value)
            name = "h-" + str(a).replace(".", "-") + ".bench.example"
            records[rz].append(f"{a.reverse_dns} 300 IN PTR {name}.")
            records["bench.example"].append(f"{name}. 300 IN A {a}")
    out = {}
    for zone in zones:
        head = (
            f"$ORIGIN {zone}.\n$TTL 300\n"
            f"@ IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300\n"
            f"@ IN NS ns.lab.test.\n"
        )
        out[zone] = head + "\n".join(records[zone]) + "\n"
    return out


def nsd_conf(state: Path, zones: list[str], rrl: int) -> str:
    lines = [
        "server:",
        f"  ip-address: {DNS_SERVER}",
        "  port: 53",
        '  username: ""',
        '  chroot: ""',
        f'  zonesdir: "{state}"',
        f'  pidfile: "{state}/nsd.pid"',
        f'  xfrdfile: "{state}/xfrd.state"',
        f'  zonelistfile: "{state}/zone.list"',
        '  database: ""',
        f'  logfile: "{state}/nsd.log"',
        "  server-count: 1",
        "  hide-version: yes",
        # NSD limits answers per client /24 by default (200 qps); the lab turns
        # it off unless asked, so the DNS benchmark measures the prober, not RRL.
        f"  rrl-ratelimit: {rrl}",
        "  rrl-slip: 2",
        "remote-control:",
        "  control-enable: no",
    ]
    for zone in zones:
        lines += [
            "zone:",
            f"  name: {zone}",
            f"  zonefile: {zone}.zone",
            "  provide-xfr: ::0/0 NOKEY",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- lab


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def _batch(ns: str, lines: list[str]) -> None:
    if lines:
        subprocess.run(
            ["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", check=True, text=True
        )


def only_within(profile: Profile, only: list[str]) -> Profile:
    """The profile cut to a site's own prefixes: what answers, and which ports listen."""
    nets = [IPNetwork(p) for p in only]

    def inside(text: str) -> bool:
        net = IPNetwork(text)
        return any(n.version == net.version and net in n for n in nets)

    return Profile(
        name=profile.name,
        answering=[p for p in profile.answering if inside(p)],
        open_ports={a: ports for a, ports in profile.open_ports.items() if inside(a)},
        ptr=profile.ptr,
        forward=profile.forward,
        blocklist=profile.blocklist,
        bulk_ptr=[p for p in profile.bulk_ptr if inside(p)],
    )


class Lab:
    """One lab: `up()` builds it from a profile, `down()` removes every trace.

    `only` (prefixes inside the lab ranges) makes it one site's lab: the probe side
    routes only those into the lab (and the lab's DNS server), so another site's space is
    unreachable from it, as between data centres; the settings' scope is `only` too.
    """

    def __init__(
        self, prefix: str = "ipam", state_dir: Path | None = None, only: list[str] | None = None
    ):
        self.prefix = prefix
        self.probe_ns = f"{prefix}-probe"
        self.lab_ns = f"{prefix}-lab"
        self.veth_probe = f"{prefix}-p0"[:15]
        self.veth_lab = f"{prefix}-l0"[:15]
        self.state = state_dir or STATE_ROOT / prefix
        self.only = [str(IPNetwork(p).cidr) for p in only] if only else None
        for net in self.only or ():
            if not any(IPNetwork(net) in IPNetwork(r) for r in LAB_RANGES):
                raise ValueError(f"{net} is outside the lab ranges {', '.join(LAB_RANGES)}")

    # The settings a product pointed at this lab needs (also written to state/lab.json).
    def settings(self) -> dict:
        return {
            "IPAM_PROBE_SCOPE": ",".join(self.only or LAB_RANGES),
            "IPAM_PROBE_NETNS": self.probe_ns,
            "IPAM_PROBE_DNS": DNS_SERVER,
            "IPAM_PROBE_BLOCKLISTS": BLOCKLIST_ZONE,
        }

    def is_up(self) -> bool:
        return (self.state / "lab.json").exists() and os.path.exists(f"/run/netns/{self.lab_ns}")

    def profile(self) -> Profile:
        info = json.loads((self.state / "lab.json").read_text())
        return PROFILES[info["profile"]]()

    def up(self, profile: Profile | str = "demo", *, rrl: int = 0) -> dict:
        if isinstance(profile, str):
            profile = PROFILES[profile]()
        if self.only:
            profile = only_within(profile, self.only)
        self.down()
        self.state.mkdir(parents=True, exist_ok=True)
        try:
            self._links()
            self._routes(profile)
            self._listeners(profile)
            self._dns(profile, rrl)
        except BaseException:
            self.down()
            raise
        info = {"profile": profile.name, "rrl": rrl, **self.settings()}
        (self.state / "lab.json").write_text(json.dumps(info, indent=2))
        return info

    def _links(self) -> None:
        for ns in (self.probe_ns, self.lab_ns):
            _ip("netns", "add", ns)
            _ip("link", "set", "lo", "up", ns=ns)
        _ip(
            "link",
            "add",
            self.veth_probe,
            "netns",
            self.probe_ns,
            "type",
            "veth",
            "peer",
            "name",
            self.veth_lab,
            "netns",
            self.lab_ns,
        )
        for ns, dev, ll in (
            (self.probe_ns, self.veth_probe, _LL_PROBE),
            (self.lab_ns, self.veth_lab, _LL_LAB),
        ):
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    f"net.ipv6.conf.{dev}.addr_gen_mode=1",
                    f"net.ipv6.conf.{dev}.accept_dad=0",
                ],
                check=True,
            )
            _ip("addr", "add", f"{ll}/64", "dev", dev, "nodad", ns=ns)
            _ip("link", "set", dev, "up", ns=ns)
        p = self.probe_ns
        routes = []
        for net in self.only or LAB_RANGES:  # the probe side's only routes: into the lab
            if IPNetwork(net).version == 4:
                routes.append(
                    f"route add {net} via inet6 {_LL_LAB} dev {self.veth_probe} src {PROBER_V4}"
                )
            else:
                routes.append(
                    f"route add {net} via {_LL_LAB} dev {self.veth_probe} src {PROBER_V6}"
                )
        if self.only:  # the lab's DNS server, whatever the site's space
            routes.append(
                f"route add {DNS_SERVER}/128 via {_LL_LAB} dev {self.veth_probe} src {PROBER_V6}"
            )
        _batch(
            p,
            [
                f"addr add {PROBER_V4}/32 dev {self.veth_probe}",
                f"addr add {PROBER_V6}/128 dev {self.veth_probe} nodad",
                *routes,
            ],
        )

    def _routes(self, profile: Profile) -> None:
        lines = [
            "route add blackhole 198.18.0.0/15",
            "route add blackhole 2001:db8::/32",
            f"route add {PROBER_V4}/32 via inet6 {_LL_PROBE} dev {self.veth_lab}",
            f"route add {PROBER_V6}/128 via {_LL_PROBE} dev {self.veth_lab}",
            f"addr add {DNS_SERVER}/128 dev lo nodad",
        ]
        for prefix in profile.answering:
            lines.append(f"route add local {prefix} dev lo")
        _batch(self.lab_ns, lines)
        # Echo replies are never rate limited by the kernel; keep the ICMP error
        # limit too so blackholed space stays silent rather than "unreachable".
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.lab_ns,
                "sysctl",
                "-qw",
                "net.ipv4.icmp_echo_ignore_broadcasts=0",
                "net.core.somaxconn=4096",
            ],
            check=True,
        )

    def _listeners(self, profile: Profile) -> None:
        if not profile.open_ports:
            return
        spec = [f"{a}|{p}" for a, ports in profile.open_ports.items() for p in ports]
        log = self.state / "listen.log"
        # Detached through the shell (it exits at once), so no child is left to reap here.
        cmd = " ".join(
            shlex.quote(x)
            for x in [
                "ip",
                "netns",
                "exec",
                self.lab_ns,
                sys.executable,
                "-m",
                "probes.lab",
                "listen",
                *spec,
            ]
        )
        started = subprocess.run(
            ["sh", "-c", f"setsid {cmd} > {shlex.quote(str(log))} 2>&1 < /dev/null & echo $!"],
            capture_output=True,
            text=True,
            check=True,
            cwd=str(Path(__file__).resolve().parent.parent),
        )
        pid = int(started.stdout.strip())
        (self.state / "listen.pid").write_text(str(pid))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "listening" in log.read_text():
                return
            if not os.path.exists(f"/proc/{pid}"):
                raise RuntimeError("lab listener failed: " + log.read_text())
            time.sleep(0.05)
        raise RuntimeError("lab listener did not start")

    def _dns(self, profile: Profile, rrl: int) -> None:
        nsd = shutil.which("nsd") or "/usr/sbin/nsd"
        if not os.path.exists(nsd):
            raise RuntimeError("nsd is not installed (Debian package nsd)")
        zones = zone_files(profile)
        for zone, text in zones.items():
            (self.state / f"{zone}.zone").write_text(text)
        conf = self.state / "nsd.conf"
        conf.write_text(nsd_conf(self.state, list(zones), rrl))
        subprocess.run(["ip", "netns", "exec", self.lab_ns, nsd, "-c", str(conf)], check=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # NSD answers once every zone is loaded
            if self._dns_answers():
                return
            time.sleep(0.1)
        raise RuntimeError("nsd did not answer: " + self._log("nsd.log"))

    def _dns_answers(self) -> bool:
        import dns.exception
        import dns.message
        import dns.query

        from .netns import entered

        with entered(self.probe_ns):
            try:
                q = dns.message.make_query(BLOCKLIST_ZONE, "SOA")
                r = dns.query.udp(q, DNS_SERVER, timeout=0.5)
                return r.rcode() == 0 and bool(r.answer)
            except (OSError, dns.exception.DNSException):
                return False

    def _log(self, name: str) -> str:
        path = self.state / name
        return path.read_text()[-2000:] if path.exists() else "(no log)"

    def down(self) -> None:
        for pidfile in ("nsd.pid", "listen.pid"):
            path = self.state / pidfile
            if path.exists():
                try:
                    pid = int(path.read_text().strip())
                    os.kill(pid, signal.SIGTERM)
                except (ValueError, ProcessLookupError, PermissionError):
                    pass
                path.unlink(missing_ok=True)
        for ns in (self.probe_ns, self.lab_ns):
            if os.path.exists(f"/run/netns/{ns}"):
                # Anything still running inside (a stray listener) dies with the namespace's users.
                pids = subprocess.run(
                    ["ip", "netns", "pids", ns], capture_output=True, text=True
                ).stdout.split()
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                _ip("netns", "del", ns, check=False)
        if self.state.exists():
            shutil.rmtree(self.state, ignore_errors=True)


def can_run() -> str | None:
    """Why the lab cannot be built here, or None when it can."""
    if os.geteuid() != 0:
        return "the probe lab needs root (network namespaces and raw sockets)"
    if not shutil.which("ip"):
        return "iproute2's `ip` command is missing"
    if not (shutil.which("nsd") or os.path.exists("/usr/sbin/nsd")):
        return "NSD is not installed (apt-get install nsd)"
    return None


def _listen(spec: list[str]) -> None:
    """Hold listening sockets open in the lab namespace; the kernel answers the SYNs."""
    socks = []
    for item in spec:
        address, port = item.rsplit("|", 1)
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Addresses of a `local` route are not assigned to any interface: free-bind them.
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, 78, 1)  # IPV6_FREEBIND
        else:
            s.setsockopt(socket.IPPROTO_IP, 15, 1)  # IP_FREEBIND
        s.bind((address, int(port)))
        s.listen(1024)
        socks.append(s)
    print("listening", len(socks), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:  # accept and drop, so backlogs never fill
        import select

        ready, _, _ = select.select(socks, [], [], 60)
        for s in ready:
            try:
                conn, _ = s.accept()
                conn.close()
            except OSError:
                pass


if __name__ == "__main__":
    if sys.argv[1:2] == ["listen"]:
        _listen(sys.argv[2:])
