"""The hot-path parsers against scapy's and dnspython's own dissection of the same bytes."""

from __future__ import annotations

import dns.message
import dns.rdatatype
import dns.reversename
import dns.rrset
import pytest
from netaddr import IPAddress
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6EchoReply, IPv6

from probes import dnscheck, sweep
from probes.scope import ProbeScope


def ip(text: str) -> int:
    return int(IPAddress(text))


# Recorded in the lab, as raw sockets in the probe namespace handed them over:
# an echo reply from 198.18.7.9, the SYN-ACK of 198.18.7.9:80, an ICMPv6 echo
# reply from 2001:db8:100::1 and a neighbour solicitation the prober must ignore.
RECORDED_ICMP4 = bytes.fromhex(
    "45000026e4f60000400102b3c6120709c613fffe0000870eabcd00016970616d2d70726f6265"
)
RECORDED_SYNACK = bytes.fromhex(
    "4500003c000040004006a78ec6120709c613fffe0050e8a027231efa7dc7379fa012fe88935c0000"
    "020405b40402080a46db5eeb938ad4680103030a"
)
RECORDED_ICMP6 = bytes.fromhex("8100a94dabcd00016970616d2d70726f6265")
RECORDED_NS6 = bytes.fromhex("87001c2a00000000fe8000000000000000000000000000010101828585555818")


def test_icmp4_parser_agrees_with_scapy():
    for raw in (
        RECORDED_ICMP4,
        bytes(IP(src="198.18.7.9", dst="198.19.255.254") / ICMP(type=0, id=0xABCD, seq=1) / b"x"),
        bytes(
            IP(src="198.18.0.1", dst="198.19.255.254", options=b"\x01" * 4)
            / ICMP(type=3, code=1)
            / (b"y" * 28)
        ),
    ):
        pkt = IP(raw)
        ident = pkt[ICMP].id if pkt[ICMP].type in (0, 8) else 0  # unused (zero) in errors
        assert sweep.parse_icmp4(raw) == (ip(pkt.src), pkt[ICMP].type, ident)
    assert sweep.parse_icmp4(b"\x45" + b"\0" * 10) is None
    tcp = bytes(IP(src="198.18.0.1", dst="198.19.255.254") / TCP())
    assert sweep.parse_icmp4(tcp) is None


def test_icmp6_and_tcp_parsers_agree_with_scapy():
    reply = ICMPv6EchoReply(RECORDED_ICMP6)
    assert sweep.parse_icmp6(RECORDED_ICMP6) == (129, reply.id) == (129, 0xABCD)
    assert sweep.parse_icmp6(RECORDED_NS6)[0] == 135  # not an echo reply: ignored
    pkt = IP(RECORDED_SYNACK)
    assert sweep.parse_tcp(RECORDED_SYNACK, True) == (
        ip(pkt.src),
        pkt[TCP].sport,
        pkt[TCP].dport,
        int(pkt[TCP].flags),
        pkt[TCP].ack,
    )
    assert pkt[TCP].sport == 80 and int(pkt[TCP].flags) == 0x12
    raw6 = bytes(ICMPv6EchoReply(id=0x1234, seq=1, data=b"ipam-probe", cksum=0))
    assert sweep.parse_icmp6(raw6) == (129, 0x1234)
    for flags, expect in (("SA", "open"), ("RA", "closed")):
        raw = bytes(
            IP(src="198.18.7.9", dst="198.19.255.254")
            / TCP(sport=443, dport=41000, flags=flags, ack=1001)
        )
        src, sport, dport, got_flags, ack = sweep.parse_tcp(raw, True)
        pkt = IP(raw)
        assert (src, sport, dport, ack) == (ip(pkt.src), 443, 41000, 1001)
        assert got_flags == int(pkt[TCP].flags)
        assert ("open" if got_flags & 0x12 == 0x12 else "closed") == expect
    raw6 = bytes(
        IPv6(src="2001:db8:100::1", dst="2001:db8:ffff::1")
        / TCP(sport=443, dport=41000, flags="SA", ack=7)
    )[40:]
    assert sweep.parse_tcp(raw6, False)[1:] == (443, 41000, 0x12, 7)


def test_the_ipv4_syn_checksum_patched_per_target_is_what_scapy_computes():
    probe = sweep.TcpSweep.__new__(sweep.TcpSweep)
    probe.sport, probe.isn, probe._templates, probe.family = 41000, 12345, {}, 4
    probe._sources = {ip("198.18.7.9") >> 8: ip("198.19.255.254")}
    sent = []
    probe.sock = type("S", (), {"sendto": lambda self, pkt, addr: sent.append(pkt)})()
    probe.send((ip("198.18.7.9"), 443))
    expect = TCP(sport=41000, dport=443, flags="S", seq=12345, window=1024, options=[("MSS", 1460)])
    full = IP(bytes(IP(src="198.19.255.254", dst="198.18.7.9") / expect))
    assert sent[0] == bytes(full[TCP])


def test_dns_codec_agrees_with_dnspython():
    for text, family in (("198.18.7.9", 4), ("2001:db8:100::1", 6)):
        assert (
            dnscheck.reverse_qname(family, ip(text)) == dns.reversename.from_address(text).to_wire()
        )
    q = dns.message.make_query("9.7.18.198.in-addr.arpa", "PTR")
    r = dns.message.make_response(q)
    r.answer.append(
        dns.rrset.from_text(q.question[0].name, 300, "IN", "CNAME", "9.0-25.7.18.198.in-addr.arpa.")
    )
    r.answer.append(
        dns.rrset.from_text(
            "9.0-25.7.18.198.in-addr.arpa.", 300, "IN", "PTR", "www.Liming-Blog.example."
        )
    )
    parsed = dnscheck.parse_answer(r.to_wire())  # dnspython compresses names
    assert parsed.rcode == 0 and not parsed.tc
    assert parsed.records == [(5, "9.0-25.7.18.198.in-addr.arpa"), (12, "www.liming-blog.example")]
    q = dns.message.make_query("12.7.18.198.bl.lab.test", "TXT")
    r = dns.message.make_response(q)
    r.answer.append(
        dns.rrset.from_text(q.question[0].name, 300, "IN", "TXT", '"listed: " "spam source"')
    )
    assert dnscheck.parse_answer(r.to_wire()).records == [(16, "listed: spam source")]
    r = dns.message.make_response(dns.message.make_query("x.example", "A"))
    r.set_rcode(3)
    assert dnscheck.parse_answer(r.to_wire()).rcode == 3
    wire = dnscheck.query(7, dnscheck.encode_name("x.example"), dnscheck.AAAA)
    back = dns.message.from_wire(wire)
    assert back.id == 7 and back.question[0].rdtype == dns.rdatatype.AAAA


@pytest.mark.parametrize(
    ("answers", "expect"),
    [
        (["127.0.0.2"], (True, ("127.0.0.2",), "")),
        (["127.0.0.2", "127.0.0.10"], (True, ("127.0.0.2", "127.0.0.10"), "")),
        (["127.255.255.254"], (False, (), "error answer 127.255.255.254")),
        (["127.255.255.252"], (False, (), "error answer 127.255.255.252")),
        (["198.18.0.1"], (False, (), "answer 198.18.0.1 is not in 127.0.0.0/8")),
        ([], (False, (), "")),
    ],
)
def test_rfc5782_answers(answers, expect):
    assert dnscheck.classify_dnsbl(ip(a) for a in answers) == expect


def test_reverse_owner_names():
    assert dnscheck.owner_address("9.7.18.198.in-addr.arpa", 4) == ip("198.18.7.9")
    six = dns.reversename.from_address("2001:db8:100::1").to_text().rstrip(".")
    assert dnscheck.owner_address(six, 6) == ip("2001:db8:100::1")
    assert dnscheck.owner_address("7.18.198.in-addr.arpa", 4) is None
    assert dnscheck.owner_address("x.7.18.198.in-addr.arpa", 4) is None


def test_scope_refuses_targets_outside_it_before_anything_is_sent():
    scope = ProbeScope.parse("198.18.0.0/15, 2001:db8::/32")
    assert scope.contains(4, ip("198.19.255.255"))
    assert not scope.contains(4, ip("127.0.0.2"))
    assert not scope.contains(6, ip("::1"))
    scope.check_prefix("198.18.7.0/24")
    narrow = ProbeScope.parse("127.0.0.1/32")  # loopback only: harmless even if this failed
    with pytest.raises(Exception) as exc:
        sweep.sweep(4, [ip("127.0.0.1"), ip("127.0.0.2")], scope=narrow)
    assert exc.value.field == "targets" and "127.0.0.2" in exc.value.message
    default = ProbeScope.parse(None)  # loopback only
    assert default.contains(4, ip("127.0.0.1")) and not default.contains(4, ip("198.18.7.9"))
    with pytest.raises(Exception) as exc:
        ProbeScope.parse("198.18.0.0/15,not-a-prefix")
    assert exc.value.field == "PROBE_SCOPE"


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("IPAM_PROBE_DNS", "dns.example.net", "not an IP address"),
        ("IPAM_PROBE_DNS", "198.18.0.53:0", "port must be 1 to 65535"),
        ("IPAM_PROBE_DNS", "[2001:db8::53]5353", "not [address]:port"),
        ("IPAM_PROBE_TIMEOUT", "soon", "not a number"),
        ("IPAM_PROBE_TIMEOUT", "nan", "outside"),
        ("IPAM_PROBE_RETRIES", "1.5", "not a whole number"),
        ("IPAM_PROBE_RATE", "-5", "outside"),
        ("IPAM_PROBE_SCOPE", "198.18.0.0/33", "not a CIDR prefix"),
        ("IPAM_PROBE_BLOCKLISTS", "not a zone!", "not a domain name"),
        ("IPAM_PROBE_NETNS", "ns; rm -rf /", "not a network namespace name"),
    ],
)
def test_a_wrong_probe_setting_is_refused_at_start_naming_it(monkeypatch, key, value, says):
    from web import create_app

    monkeypatch.setenv(key, value)
    with pytest.raises(RuntimeError, match=key) as err:
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "t"})
    assert says in str(err.value)


def test_dns_servers_take_a_port_in_both_families():
    from probes.settings import DnsServer, dns_server

    assert dns_server("198.18.0.53") == DnsServer("198.18.0.53", 53)
    assert dns_server("198.18.0.53:5353") == DnsServer("198.18.0.53", 5353)
    assert dns_server("2001:db8::53") == DnsServer("2001:db8::53", 53)
    assert dns_server("[2001:db8::53]:5353") == DnsServer("2001:db8::53", 5353)
