"""The engine against real hosts in the lab: sweeps, TCP, DNS, blocklists, scope."""

from __future__ import annotations

import subprocess

import pytest
from netaddr import IPAddress, IPNetwork

from probes import dnscheck, sweep
from probes import lab as lab_module
from probes.netns import own_addresses
from probes.scope import ProbeScope
from tests.probes.conftest import LAB_GROUP

LAB = ProbeScope.parse(",".join(lab_module.LAB_RANGES))
DNS = lab_module.DNS_SERVER


pytestmark = LAB_GROUP


def ip(text: str) -> int:
    return int(IPAddress(text))


def span(prefix: str) -> list[int]:
    net = IPNetwork(prefix)
    return list(range(net.first, net.last + 1))


def test_the_probe_side_can_reach_only_the_lab(lab):
    routes = subprocess.run(
        ["ip", "-n", lab.probe_ns, "-4", "route"], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    routes += subprocess.run(
        ["ip", "-n", lab.probe_ns, "-6", "route"], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    targets = {line.split()[0] for line in routes if line.strip()}
    assert "default" not in targets
    allowed = [IPNetwork(p) for p in (*lab_module.LAB_RANGES, "fe80::/64")]
    assert all(any(IPNetwork(t) in a for a in allowed) for t in targets), targets
    assert {"198.18.0.0/15", "2001:db8::/32"} <= targets


def test_an_ipv4_sweep_finds_exactly_the_answering_set(lab, inside):
    profile = lab_module.demo_profile()
    expected = profile.answering_set()
    with inside():
        own = own_addresses()
        got = sweep.icmp_answering(4, span("198.18.0.0/16"), scope=LAB, timeout=0.5)
        got2 = sweep.icmp_answering(4, span("198.19.0.0/20"), scope=LAB, timeout=0.5)
    assert own[4] == {ip(lab_module.PROBER_V4), ip("127.0.0.1")}
    assert set(got) == {v for v in expected if v >> 16 == ip("198.18.0.0") >> 16}
    assert set(got2) == {v for v in expected if v >> 12 == ip("198.19.0.0") >> 12}
    assert all(0 < rtt < 0.5 for rtt in got.values())


def test_tcp_tells_open_from_closed_and_silent(lab, inside):
    targets = [ip(a) for a in ("198.18.7.9", "198.18.7.8", "198.18.7.50")]
    with inside():
        obs = sweep.sweep(4, targets, scope=LAB, methods=("tcp",), ports=(22, 80, 443), timeout=0.5)
        six = sweep.sweep(
            6,
            [ip("2001:db8:100::1"), ip("2001:db8:100::99")],
            scope=LAB,
            methods=("icmp", "tcp"),
            ports=(443,),
            timeout=0.5,
        )
    seen = {(o.text, o.method): (o.answered, o.detail) for o in obs + six}
    assert seen == {
        ("198.18.7.9", "tcp:22"): (True, "closed"),
        ("198.18.7.9", "tcp:80"): (True, "open"),
        ("198.18.7.9", "tcp:443"): (True, "open"),
        ("198.18.7.8", "tcp:22"): (True, "closed"),
        ("198.18.7.8", "tcp:80"): (True, "closed"),
        ("198.18.7.8", "tcp:443"): (True, "closed"),
        ("198.18.7.50", "tcp:22"): (False, ""),
        ("198.18.7.50", "tcp:80"): (False, ""),
        ("198.18.7.50", "tcp:443"): (False, ""),
        ("2001:db8:100::1", "icmp"): (True, ""),
        ("2001:db8:100::1", "tcp:443"): (True, "open"),
        ("2001:db8:100::99", "icmp"): (False, ""),
        ("2001:db8:100::99", "tcp:443"): (False, ""),
    }


def test_reverse_dns_and_forward_confirmation(lab, inside):
    addrs = ["198.18.7.9", "198.18.7.10", "198.18.7.11", "198.18.7.2", "198.18.7.130"]
    with inside():
        got = dnscheck.check_reverse(4, [ip(a) for a in addrs], server=DNS, scope=LAB)
        six = dnscheck.check_reverse(6, [ip("2001:db8:100::1")], server=DNS, scope=LAB)
        axfr = dnscheck.reverse_by_transfer(
            4,
            [ip(a) for a in addrs],
            ["18.198.in-addr.arpa"],
            [
                "xinghe.example",
                "liming-blog.example",
                "unregistered-party.example",
                "yunfan.example",
            ],
            server=DNS,
        )
    by = {str(IPAddress(r.address)): (r.ptr, r.confirmed) for r in got}
    assert by == {
        "198.18.7.9": (("www.liming-blog.example",), True),
        "198.18.7.10": (("shop.unregistered-party.example",), True),
        "198.18.7.11": (("mail.xinghe.example",), False),
        "198.18.7.2": ((), None),
        "198.18.7.130": (("nas.yunfan.example",), True),
    }
    assert [(r.ptr, r.confirmed) for r in six] == [(("v6.xinghe.example",), True)]
    assert [(r.address, r.ptr, r.confirmed, r.forward) for r in axfr] == [
        (r.address, r.ptr, r.confirmed, r.forward) for r in got
    ]


def test_blocklist_listings_reasons_and_error_answers(lab, inside):
    with inside():
        got = dnscheck.check_blocklists(
            4,
            [ip(a) for a in ("198.18.7.12", "198.18.7.13", "198.18.7.14")],
            [lab_module.BLOCKLIST_ZONE],
            server=DNS,
        )
    assert [(x.listed, x.codes, x.reason, x.error) for x in got] == [
        (True, ("127.0.0.2",), "listed: spam source (lab blocklist)", ""),
        (False, (), "", "error answer 127.255.255.254"),
        (False, (), "", ""),
    ]


def test_an_out_of_scope_target_is_refused_and_nothing_is_sent(lab, inside):
    def sent() -> int:
        out = subprocess.run(
            ["ip", "-n", lab.probe_ns, "-s", "-j", "link", "show", lab.veth_probe],
            capture_output=True,
            text=True,
            check=True,
        )
        import json

        return json.loads(out.stdout)[0]["stats64"]["tx"]["packets"]

    narrow = ProbeScope.parse("198.18.7.0/24")
    before = sent()
    with inside(), pytest.raises(Exception) as exc:
        sweep.sweep(4, [ip("198.18.7.9"), ip("198.18.8.1")], scope=narrow, timeout=0.2)
    assert exc.value.field == "targets" and "198.18.8.1" in exc.value.message
    assert sent() == before  # not even the in-scope target was probed
    with inside():
        sweep.sweep(4, [ip("198.18.7.9")], scope=narrow, timeout=0.2)
    assert sent() > before


def test_the_engine_copes_with_a_rate_limited_server():
    """NSD's RRL (5 answers/s here) truncates or drops answers: every address still gets one."""
    from tests.probes.conftest import _need_lab

    _need_lab()
    limited = lab_module.Lab("ipamrrl")
    try:
        limited.up("demo", rrl=5)
        targets = span("198.18.7.0/25")
        with __import__("probes.netns", fromlist=["entered"]).entered(limited.probe_ns):
            res = dnscheck.Resolver(DNS, timeout=0.3, retries=6)
            answers = res.resolve([(dnscheck.reverse_qname(4, v), dnscheck.PTR) for v in targets])
    finally:
        limited.down()
    assert all(a is not None for a in answers)
    assert res.stats["truncated"] + res.stats["timeouts"] > 0  # the limit did bite
    named = {targets[i]: a.records for i, a in enumerate(answers) if a.records}
    assert named[ip("198.18.7.9")] == [(12, "www.liming-blog.example")]


def test_a_split_sweep_with_retries_still_hears_every_answer(lab, inside):
    """16,384 targets take the two-process path; the retry then runs in one process."""
    expected = lab_module.demo_profile().answering_set()
    targets = span("198.19.0.0/18")
    with inside():
        obs = sweep.sweep(4, targets, scope=LAB, timeout=0.3, retries=1)
    assert {o.address for o in obs if o.answered} == {v for v in expected if v in set(targets)}
    assert len(obs) == len(targets)
