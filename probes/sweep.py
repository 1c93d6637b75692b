"""ICMP echo and TCP SYN sweeps from one process, at line speed.

scapy builds each packet template once (ICMP echo, ICMPv6 echo, TCP SYN);
the hot loop only patches what differs per target (for IPv4 TCP, the
checksum over the destination) and calls sendto on a raw socket, draining
replies between batches. Replies are dissected by the small parsers below,
which the tests check against scapy's own dissection of recorded packets.

Results are plain observations: address, method, answered, rtt, time.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import struct
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from scapy.layers.inet import ICMP, TCP
from scapy.layers.inet6 import ICMPv6EchoRequest

from .scope import ProbeScope

PAYLOAD = b"ipam-probe"
BATCH = 256  # sends between drains of the receive queue
RCVBUF = 64 << 20
ICMP6_FILTER = 1
IPV6_CHECKSUM = 7


@dataclass(frozen=True)
class Observation:
    """One probe of one address by one method."""

    family: int
    address: int
    method: str  # "icmp" | "tcp:<port>"
    answered: bool
    rtt_ms: float | None
    at: datetime
    detail: str = ""  # tcp: "open" | "closed"

    @property
    def text(self) -> str:
        return ntop(self.family, self.address)


def ntop(family: int, value: int) -> str:
    if family == 4:
        return socket.inet_ntoa(value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def pton(family: int, text: str) -> int:
    if family == 4:
        return int.from_bytes(socket.inet_aton(text), "big")
    return int.from_bytes(socket.inet_pton(socket.AF_INET6, text.split("%")[0]), "big")


# --------------------------------------------------------------------------- parsers


def parse_icmp4(data: bytes) -> tuple[int, int, int] | None:
    """(source, type, identifier) of an IPv4 datagram carrying ICMP, else None."""
    if len(data) < 28 or data[0] >> 4 != 4 or data[9] != 1:
        return None
    ihl = (data[0] & 15) * 4
    if len(data) < ihl + 8:
        return None
    return int.from_bytes(data[12:16], "big"), data[ihl], (data[ihl + 4] << 8) | data[ihl + 5]


def parse_icmp6(data: bytes) -> tuple[int, int] | None:
    """(type, identifier) of an ICMPv6 message (raw sockets strip the IPv6 header)."""
    if len(data) < 8:
        return None
    return data[0], (data[4] << 8) | data[5]


def parse_tcp(data: bytes, has_ip_header: bool) -> tuple[int | None, int, int, int, int] | None:
    """(source or None, source port, destination port, flags, ack) of a TCP segment."""
    src = None
    if has_ip_header:
        if len(data) < 40 or data[0] >> 4 != 4 or data[9] != 6:
            return None
        src = int.from_bytes(data[12:16], "big")
        data = data[(data[0] & 15) * 4 :]
    if len(data) < 20:
        return None
    sport, dport, _seq, ack = struct.unpack_from("!HHII", data)
    return src, sport, dport, data[13], ack


# --------------------------------------------------------------------------- sockets


def _raw(family: int, proto: int) -> socket.socket:
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    s = socket.socket(af, socket.SOCK_RAW, proto)
    for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # *BUFFORCE as root
        try:
            s.setsockopt(socket.SOL_SOCKET, force, RCVBUF)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, opt, RCVBUF)
    s.setblocking(False)
    return s


SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27


def _only_parity(sock: socket.socket, parity: int) -> None:
    """Classic BPF on a raw IPv4 socket: accept datagrams whose source address is
    even (0) or odd (1) in its last octet, drop the rest before they are queued."""
    prog = b"".join(
        struct.pack("HBBI", *ins)
        for ins in (
            (0x30, 0, 0, 15),  # ldb [15]       last octet of the source address
            (0x54, 0, 0, 1),  # and #1
            (0x15, 0, 1, parity),  # jeq #parity, accept, drop
            (0x06, 0, 0, 0xFFFF),  # ret #65535
            (0x06, 0, 0, 0),  # ret #0
        )
    )
    buf = ctypes.create_string_buffer(prog)  # the kernel copies the program on attach
    fprog = struct.pack("HL", len(prog) // 8, ctypes.addressof(buf))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _pacer(rate: float | None):
    """Sleep as needed so that n sends take at least n / rate seconds."""
    start = time.monotonic()

    def wait(n: int) -> None:
        if rate:
            ahead = n / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)

    return wait


class _Sweep:
    """One send/receive loop; subclasses say how to build, send and recognise."""

    method = "icmp"

    def __init__(self, family: int, timeout: float, retries: int, rate: float | None):
        self.family = family
        self.timeout = timeout
        self.retries = retries
        self.rate = rate
        self.ident = int.from_bytes(os.urandom(2), "big") or 1
        self.sent: dict = {}
        self.got: dict = {}
        self.detail: dict = {}

    def run(self, keys: Sequence) -> None:
        pending = list(keys)
        for attempt in range(self.retries + 1):
            if not pending:
                break
            self.timeout_spent = False
            self._send_all(pending)
            if not self.timeout_spent:
                self._wait(self.timeout)
            pending = [k for k in pending if k not in self.got]
            del attempt

    def _send_all(self, keys: Sequence) -> None:
        send, sent, clock = self.send, self.sent, time.monotonic
        pace = _pacer(self.rate)
        n = 0
        for key in keys:
            while True:
                try:
                    send(key)
                    break
                except (BlockingIOError, InterruptedError):
                    self.drain()
                    select.select([], [self.sock], [], 0.01)
                except OSError as exc:  # unreachable from the routing table: no answer
                    if exc.errno in (101, 113, 22):
                        break
                    raise
            sent[key] = clock()
            n += 1
            if n % BATCH == 0:
                self.drain()
                pace(n)

    def _wait(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if len(self.got) >= len(self.sent):
                return
            ready, _, _ = select.select([self.sock], [], [], left)
            if ready:
                self.drain()


class IcmpSweep(_Sweep):
    """Echo requests; one template packet serves every target (same id, seq, payload)."""

    def __init__(self, family, timeout, retries, rate):
        super().__init__(family, timeout, retries, rate)
        if family == 4:
            self.sock = _raw(4, socket.IPPROTO_ICMP)
            self.packet = bytes(ICMP(type=8, id=self.ident, seq=1) / PAYLOAD)
        else:
            self.sock = _raw(6, socket.IPPROTO_ICMPV6)
            # The kernel fills in the ICMPv6 checksum; let only echo replies in.
            blocked = [0xFFFFFFFF] * 8
            blocked[129 >> 5] &= ~(1 << (129 & 31))
            self.sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("8I", *blocked))
            self.packet = bytes(ICMPv6EchoRequest(id=self.ident, seq=1, data=PAYLOAD, cksum=0))
        self.send = self._sender()

    def _sender(self):
        pkt, sendto = self.packet, self.sock.sendto
        if self.family == 4:
            ntoa = socket.inet_ntoa
            return lambda v: sendto(pkt, (ntoa(v.to_bytes(4, "big")), 0))
        ntop6 = socket.inet_ntop
        return lambda v: sendto(pkt, (ntop6(socket.AF_INET6, v.to_bytes(16, "big")), 0))

    # With a second core and no rate cap (IPv4), the sweep is split in two processes
    # (only then: the product's default rate cap keeps scheduler runs single-process)
    # by the parity of each address's last octet: a forked helper sends to the odd
    # ones and, through a BPF filter on its own socket, receives only their replies;
    # this process does the even ones. Most of the cost is the kernel's, per packet
    # sent and received, and it then runs on both cores. The helper reports its
    # answers (address, rtt) through a pipe.
    FORK_MIN = 16384

    def _send_all(self, keys: Sequence) -> None:
        if (self.rate or self.family != 4 or (os.cpu_count() or 1) < 2
                or len(keys) < self.FORK_MIN):  # fmt: skip
            return super()._send_all(keys)
        mine = [k for k in keys if not k & 1]
        theirs = [k for k in keys if k & 1]
        _only_parity(self.sock, 0)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the helper: probe, report, leave without running any cleanup
            code = 0
            try:
                os.close(r)
                self._helper(theirs, w)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        try:
            super()._send_all(mine)
            self._wait(self.timeout)
            report = self._read_report(r)
        finally:
            os.close(r)
            os.waitpid(pid, 0)
            self.sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)  # retries see all
        now = time.monotonic()
        for key in theirs:
            self.sent[key] = now
        for key, rtt in report:
            self.got[key] = rtt
        self.timeout_spent = True

    def _helper(self, keys: Sequence, pipe: int) -> None:
        self.sock.close()  # the parent's socket sees only even addresses; make our own
        self.sock = _raw(4, socket.IPPROTO_ICMP)
        _only_parity(self.sock, 1)
        self.send = self._sender()
        self.sent, self.got = {}, {}
        super()._send_all(keys)
        self._wait(self.timeout)
        out = array("d")
        for key, rtt in self.got.items():
            out.append(float(key))
            out.append(rtt)
        view = memoryview(out.tobytes())
        while view:
            view = view[os.write(pipe, view) :]

    def _read_report(self, pipe: int) -> list[tuple[int, float]]:
        chunks = []
        while data := os.read(pipe, 1 << 20):
            chunks.append(data)
        raw = b"".join(chunks)
        values = array("d")
        values.frombytes(raw[: len(raw) // 16 * 16])
        return [(int(values[i]), values[i + 1]) for i in range(0, len(values), 2)]

    def drain(self) -> None:
        recv, sent, got, ident, now = self.sock.recvfrom, self.sent, self.got, self.ident, None
        v4 = self.family == 4
        while True:
            try:
                data, addr = recv(512)
            except (BlockingIOError, InterruptedError):
                return
            now = now or time.monotonic()
            if v4:
                parsed = parse_icmp4(data)
                if not parsed or parsed[1] != 0 or parsed[2] != ident:
                    continue
                src = parsed[0]
            else:
                parsed = parse_icmp6(data)
                if not parsed or parsed[0] != 129 or parsed[1] != ident:
                    continue
                src = pton(6, addr[0])
            if src in sent and src not in got:
                got[src] = now - sent[src]


class TcpSweep(_Sweep):
    """SYN to (address, port); SYN-ACK means open, RST closed: either way the host answered."""

    method = "tcp"

    def __init__(self, family, timeout, retries, rate):
        super().__init__(family, timeout, retries, rate)
        self.sport = 40000 + self.ident % 20000
        self.isn = int.from_bytes(os.urandom(4), "big")
        self.sock = _raw(family, socket.IPPROTO_TCP)
        if family == 6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, 16)
        self._templates: dict[int, tuple] = {}
        self._sources: dict[int, int] = {}

    def _template(self, port: int):
        t = self._templates.get(port)
        if t is None:
            opts = [("MSS", 1460)]
            raw = bytes(
                TCP(
                    sport=self.sport,
                    dport=port,
                    flags="S",
                    seq=self.isn,
                    window=1024,
                    options=opts,
                    chksum=0,
                )
            )
            words = sum(struct.unpack(f"!{len(raw) // 2}H", raw))
            t = self._templates[port] = (raw[:16], raw[18:], words, len(raw))
        return t

    def _source(self, dst: int) -> int:
        """The kernel's source address toward dst (one lookup per /24), for the checksum."""
        key = dst >> 8
        src = self._sources.get(key)
        if src is None:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.connect((ntop(4, dst), 9))
                src = pton(4, probe.getsockname()[0])
            finally:
                probe.close()
            self._sources[key] = src
        return src

    def send(self, key) -> None:
        address, port = key
        head, tail, words, length = self._template(port)
        if self.family == 4:
            src = self._source(address)
            s = words + (src >> 16) + (src & 0xFFFF) + (address >> 16) + (address & 0xFFFF)
            s += 6 + length
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            pkt = head + (~s & 0xFFFF).to_bytes(2, "big") + tail
            self.sock.sendto(pkt, (ntop(4, address), 0))
        else:
            self.sock.sendto(head + b"\0\0" + tail, (ntop(6, address), 0))

    def drain(self) -> None:
        recv, sent, got, now = self.sock.recvfrom, self.sent, self.got, None
        v4, want_ack, sport = self.family == 4, (self.isn + 1) & 0xFFFFFFFF, self.sport
        while True:
            try:
                data, addr = recv(512)
            except (BlockingIOError, InterruptedError):
                return
            parsed = parse_tcp(data, v4)
            if not parsed or parsed[2] != sport or parsed[4] != want_ack:
                continue
            now = now or time.monotonic()
            src = parsed[0] if v4 else pton(6, addr[0])
            key = (src, parsed[1])
            if key in sent and key not in got:
                got[key] = now - sent[key]
                flags = parsed[3]
                self.detail[key] = "open" if flags & 0x12 == 0x12 else "closed"


def sweep(
    family: int,
    targets: Sequence[int],
    *,
    scope: ProbeScope,
    methods: Iterable[str] = ("icmp",),
    ports: Iterable[int] = (),
    timeout: float = 1.0,
    retries: int = 0,
    rate: float | None = None,
) -> list[Observation]:
    """Probe every target by every method; refuse the whole run if any target is out of scope."""
    scope.check_targets(family, targets)
    out: list[Observation] = []
    at = datetime.now(UTC)
    if "icmp" in methods:
        s = IcmpSweep(family, timeout, retries, rate)
        try:
            s.run(targets)
        finally:
            s.sock.close()
        got = s.got
        for v in targets:
            rtt = got.get(v)
            out.append(Observation(family, v, "icmp", rtt is not None, _ms(rtt), at))
    ports = sorted(set(ports))
    if "tcp" in methods and ports:
        s = TcpSweep(family, timeout, retries, rate)
        keys = [(v, p) for v in targets for p in ports]
        try:
            s.run(keys)
        finally:
            s.sock.close()
        for key in keys:
            rtt = s.got.get(key)
            out.append(
                Observation(
                    family,
                    key[0],
                    f"tcp:{key[1]}",
                    rtt is not None,
                    _ms(rtt),
                    at,
                    s.detail.get(key, ""),
                )
            )
    return out


def icmp_answering(
    family: int, targets: Sequence[int], *, scope: ProbeScope, timeout=1.0, retries=0, rate=None
) -> dict[int, float]:
    """The fast path the benchmark measures: address -> rtt seconds for those that answered."""
    scope.check_targets(family, targets)
    s = IcmpSweep(family, timeout, retries, rate)
    try:
        s.run(targets)
    finally:
        s.sock.close()
    return s.got


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
