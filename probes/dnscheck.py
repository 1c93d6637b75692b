"""Reverse DNS, forward confirmation and blocklist checks, many queries in flight.

dnspython's resolver sends one query and waits; parsing a message with it
costs about as much as the round trip to a nearby server. So the per-address
hot path keeps a window of queries in flight on one UDP socket and encodes
and decodes the few record types it needs (PTR, A, AAAA, TXT) with the small
wire codec below, which the tests check against dnspython's. dnspython does
the rest: server and zone names, zone transfers (the fastest way to verify a
whole /16 where the server allows one) and the TCP fallback.

Coping with a rate-limited server (NSD's RRL answers some queries with TC=1
and drops others): a truncated answer is asked again over TCP; a lost one is
retried after a timeout, and every loss halves the window of queries in
flight, which then grows back by one per answer.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.zone

from .scope import ProbeScope

PTR, A, AAAA, TXT, SOA = 12, 1, 28, 16, 6
NOERROR, NXDOMAIN = 0, 3
_LABEL = [bytes([len(str(i))]) + str(i).encode() for i in range(256)]
_NIBBLE = [b"\x01" + c.encode() for c in "0123456789abcdef"]
_V4_ARPA = b"\x07in-addr\x04arpa\x00"
_V6_ARPA = b"\x03ip6\x04arpa\x00"


# --------------------------------------------------------------------------- codec


def encode_name(name: str) -> bytes:
    name = name.rstrip(".")
    raw = name.encode() if name.isascii() else name.encode("idna")
    return b"".join([bytes((len(label),)) + label for label in raw.split(b".")]) + b"\0"


def reverse_qname(family: int, value: int, zone: bytes | None = None) -> bytes:
    """Wire name of the reverse (or, with zone, the RFC 5782 blocklist) entry for an address."""
    if family == 4:
        b = value.to_bytes(4, "big")
        head = _LABEL[b[3]] + _LABEL[b[2]] + _LABEL[b[1]] + _LABEL[b[0]]
        return head + (zone if zone is not None else _V4_ARPA)
    nib = f"{value:032x}"[::-1]
    return b"".join(_NIBBLE[int(c, 16)] for c in nib) + (zone if zone is not None else _V6_ARPA)


def query(qid: int, qname: bytes, qtype: int) -> bytes:
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def read_name(buf: bytes, off: int) -> tuple[str, int]:
    """Decode a (possibly compressed) name; returns (dotted name, offset after it)."""
    labels, end, hops = [], None, 0
    while True:
        n = buf[off]
        if n >= 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | buf[off + 1]
            hops += 1
            if hops > 64:
                raise ValueError("compression loop")
            continue
        if n == 0:
            return ".".join(labels).lower(), end if end is not None else off + 1
        labels.append(buf[off + 1 : off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def _skip_name(buf: bytes, off: int) -> int:
    while True:
        n = buf[off]
        if n >= 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += 1 + n


@dataclass
class Answer:
    rcode: int
    tc: bool
    records: list[tuple[int, object]] = field(default_factory=list)  # (type, value)


def parse_answer(buf: bytes, question_end: int | None = None) -> Answer:
    """Header flags and the answer section's PTR / A / AAAA / TXT / CNAME values.

    question_end: where the answer section starts, when the caller knows (it
    checked that the answer repeats its one-question query byte for byte).
    """
    _qid, flags, qd, an = struct.unpack_from("!HHHH", buf)
    if question_end is None:
        off = 12
        for _ in range(qd):
            off = _skip_name(buf, off) + 4
    else:
        off = question_end
    out = Answer(flags & 0xF, bool(flags & 0x0200))
    for _ in range(an):
        off = off + 2 if buf[off] >= 0xC0 else _skip_name(buf, off)
        rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", buf, off)
        off += 10
        if rtype in (PTR, 5):
            out.records.append((rtype, read_name(buf, off)[0]))
        elif rtype == A and rdlen == 4:
            out.records.append((A, int.from_bytes(buf[off : off + 4], "big")))
        elif rtype == AAAA and rdlen == 16:
            out.records.append((AAAA, int.from_bytes(buf[off : off + 16], "big")))
        elif rtype == TXT:
            parts, p = [], off
            while p < off + rdlen:
                n = buf[p]
                parts.append(buf[p + 1 : p + 1 + n].decode("utf-8", "replace"))
                p += 1 + n
            out.records.append((TXT, "".join(parts)))
        off += rdlen
    return out


# --------------------------------------------------------------------------- engine


class Resolver:
    """Many queries in flight to one server over UDP, TCP when an answer is truncated."""

    def __init__(
        self,
        server: str,
        *,
        port: int = 53,
        timeout: float = 1.0,
        retries: int = 3,
        window: int = 1000,
    ):
        self.server = (server, port)
        self.family = socket.AF_INET6 if ":" in server else socket.AF_INET
        self.timeout = timeout
        self.retries = retries
        self.max_window = window
        self.stats = {"sent": 0, "answers": 0, "timeouts": 0, "truncated": 0, "lost": 0}

    def resolve(self, questions: Sequence[tuple[bytes, int]]) -> list[Answer | None]:
        """Answer every (wire qname, qtype); None where the server never answered."""
        results: list[Answer | None] = [None] * len(questions)
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
        except OSError:
            pass
        sock.connect(self.server)
        sock.setblocking(False)
        todo = deque((i, 0) for i in range(len(questions)))
        inflight: dict[int, tuple[int, int, float, bytes]] = {}  # qid -> (index, tries, due, q)
        free_ids = deque(range(65536))
        window = float(min(self.max_window, 64))
        truncated: list[int] = []
        next_check = 0.0
        recv, send, clock = sock.recv, sock.send, time.monotonic
        stats = self.stats
        try:
            while todo or inflight:
                now = clock()
                while todo and len(inflight) < int(window):
                    i, tries = todo.popleft()
                    qid = free_ids.popleft()
                    qname, qtype = questions[i]
                    q = query(qid, qname, qtype)
                    try:
                        send(q)
                    except (BlockingIOError, InterruptedError):
                        todo.appendleft((i, tries))
                        free_ids.appendleft(qid)
                        break
                    stats["sent"] += 1
                    inflight[qid] = (i, tries, now + self.timeout * (1 << tries), q)
                ready, _, _ = select.select([sock], [], [], 0.005 if todo else 0.05)
                if ready:
                    while True:
                        try:
                            buf = recv(4096)
                        except (BlockingIOError, InterruptedError):
                            break
                        except ConnectionRefusedError:
                            break
                        if len(buf) < 12:
                            continue
                        qid = (buf[0] << 8) | buf[1]
                        item = inflight.get(qid)
                        if item is None:
                            continue
                        i, tries, _due, q = item
                        if buf[12 : len(q)] != q[12:]:  # not our question: ignore
                            continue
                        del inflight[qid]
                        free_ids.append(qid)
                        stats["answers"] += 1
                        try:
                            ans = parse_answer(buf, len(q))
                        except (IndexError, struct.error, ValueError):
                            ans = None
                        if ans is not None and ans.tc:
                            stats["truncated"] += 1
                            truncated.append(i)
                        else:
                            results[i] = ans
                        if window < self.max_window:
                            window += 1.0
                now = clock()
                if now < next_check:
                    continue
                next_check = now + 0.02  # scanning the window costs: not on every answer
                expired = [qid for qid, item in inflight.items() if item[2] <= now]
                for qid in expired:
                    i, tries, _due, _q = inflight.pop(qid)
                    free_ids.append(qid)
                    stats["timeouts"] += 1
                    window = max(8.0, window / 2)
                    if tries < self.retries:
                        todo.append((i, tries + 1))
                    else:
                        stats["lost"] += 1
        finally:
            sock.close()
        if truncated:
            self._over_tcp(questions, truncated, results)
        return results

    def _over_tcp(self, questions, indexes: list[int], results: list) -> None:
        """Ask again over one TCP connection, pipelined (answers come back by id)."""
        conn = socket.create_connection(self.server, timeout=self.timeout * 4)
        try:
            for start in range(0, len(indexes), 500):
                chunk = indexes[start : start + 500]
                out = b""
                for n, i in enumerate(chunk):
                    q = query(n, *questions[i])
                    out += len(q).to_bytes(2, "big") + q
                conn.sendall(out)
                pending = len(chunk)
                buf = b""
                while pending:
                    data = conn.recv(65536)
                    if not data:
                        raise ConnectionError("server closed the TCP connection")
                    buf += data
                    while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                        n = int.from_bytes(buf[:2], "big")
                        msg, buf = buf[2 : 2 + n], buf[2 + n :]
                        qid = int.from_bytes(msg[:2], "big")
                        if qid < len(chunk):
                            results[chunk[qid]] = parse_answer(msg)
                            pending -= 1
        finally:
            conn.close()


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class ReverseResult:
    """What DNS says about one address."""

    family: int
    address: int
    ptr: tuple[str, ...]  # names (empty: no PTR)
    confirmed: bool | None  # a PTR name resolves back to the address; None without PTR
    forward: tuple[int, ...] = ()  # the addresses the first PTR name resolves to
    error: str = ""  # "timeout" when the server never answered


def check_reverse(
    family: int,
    targets: Sequence[int],
    *,
    server: str,
    scope: ProbeScope | None = None,
    timeout: float = 1.0,
    retries: int = 3,
    window: int = 1000,
    port: int = 53,
) -> list[ReverseResult]:
    """PTR for every target, then the forward lookup of every distinct PTR name."""
    if scope is not None:  # DNS goes to the server, but only about addresses in scope
        scope.check_targets(family, targets)
    res = Resolver(server, port=port, timeout=timeout, retries=retries, window=window)
    answers = res.resolve([(reverse_qname(family, v), PTR) for v in targets])
    names: dict[str, int] = {}
    ptrs = []
    for ans in answers:
        got = tuple(v for t, v in ans.records if t == PTR) if ans else ()
        ptrs.append(got)
        for name in got:
            names.setdefault(name, len(names))
    ftype = A if family == 4 else AAAA
    fwd_answers = res.resolve([(encode_name(n), ftype) for n in names])
    forward = {
        n: tuple(v for t, v in (fwd_answers[k].records if fwd_answers[k] else ()) if t == ftype)
        for n, k in names.items()
    }
    out = []
    for value, ans, got in zip(targets, answers, ptrs, strict=True):
        if ans is None:
            out.append(ReverseResult(family, value, (), None, (), "timeout"))
            continue
        if not got:
            out.append(ReverseResult(family, value, (), None))
            continue
        confirmed = any(value in forward[n] for n in got)
        out.append(ReverseResult(family, value, got, confirmed, forward[got[0]]))
    return out


@dataclass(frozen=True)
class Listing:
    """An RFC 5782 answer for one address under one blocklist zone."""

    family: int
    address: int
    zone: str
    listed: bool
    codes: tuple[str, ...] = ()
    reason: str = ""
    error: str = ""  # 127.255.255.0/24 answers, non-127 answers, timeouts: not listings


def classify_dnsbl(values: Iterable[int]) -> tuple[bool, tuple[str, ...], str]:
    """(listed, codes, error) from the A answers of a blocklist query (RFC 5782 §2.1, §5)."""
    listed, codes, errors = False, [], []
    for v in values:
        text = socket.inet_ntoa(v.to_bytes(4, "big"))
        if v >> 8 == 0x7FFFFF:  # 127.255.255.0/24: an error code, never a listing
            errors.append(f"error answer {text}")
        elif v >> 24 == 127:
            listed = True
            codes.append(text)
        else:
            errors.append(f"answer {text} is not in 127.0.0.0/8")
    return listed, tuple(codes), "; ".join(errors)


def check_blocklists(
    family: int,
    targets: Sequence[int],
    zones: Sequence[str],
    *,
    server: str,
    timeout: float = 1.0,
    retries: int = 3,
    port: int = 53,
) -> list[Listing]:
    """A (and, for listed entries, TXT) under every zone for every target."""
    res = Resolver(server, port=port, timeout=timeout, retries=retries)
    questions, keys = [], []
    for zone in zones:
        wire_zone = encode_name(zone)
        for v in targets:
            questions.append((reverse_qname(family, v, wire_zone), A))
            keys.append((v, zone))
    answers = res.resolve(questions)
    out: list[Listing] = []
    txt_needed = []
    for (v, zone), q, ans in zip(keys, questions, answers, strict=True):
        if ans is None:
            out.append(Listing(family, v, zone, False, error="timeout"))
            continue
        if ans.rcode not in (NOERROR, NXDOMAIN):
            out.append(Listing(family, v, zone, False, error=f"rcode {ans.rcode}"))
            continue
        listed, codes, error = classify_dnsbl(val for t, val in ans.records if t == A)
        out.append(Listing(family, v, zone, listed, codes, "", error))
        if listed:
            txt_needed.append((len(out) - 1, q[0]))
    if txt_needed:
        txts = res.resolve([(qname, TXT) for _, qname in txt_needed])
        for (k, _), ans in zip(txt_needed, txts, strict=True):
            reason = " ".join(v for t, v in (ans.records if ans else ()) if t == TXT)
            item = out[k]
            out[k] = Listing(item.family, item.address, item.zone, True, item.codes, reason)
    return out


def reverse_by_transfer(
    family: int,
    targets: Sequence[int],
    zones: Sequence[str],
    forward_zones: Sequence[str],
    *,
    server: str,
    timeout: float = 10.0,
    port: int = 53,
) -> list[ReverseResult]:
    """The same answers as check_reverse, from zone transfers (dnspython) where allowed."""
    ptr: dict[int, list[str]] = {}
    fwd: dict[str, list[int]] = {}
    for zone in zones:
        for owner, rtype, value in _transfer(server, zone, port, timeout):
            if rtype == PTR:
                key = owner_address(owner, family)
                if key is not None:
                    ptr.setdefault(key, []).append(value)
    ftype = A if family == 4 else AAAA
    for zone in forward_zones:
        for owner, rtype, value in _transfer(server, zone, port, timeout):
            if rtype == ftype:
                fwd.setdefault(owner, []).append(value)
    out = []
    for v in targets:
        names = tuple(ptr.get(v, ()))
        if not names:
            out.append(ReverseResult(family, v, (), None))
            continue
        confirmed = any(v in fwd.get(n, ()) for n in names)
        out.append(ReverseResult(family, v, names, confirmed, tuple(fwd.get(names[0], ()))))
    return out


def owner_address(owner: str, family: int) -> int | None:
    """The address a reverse-zone owner name stands for (None for other names)."""
    labels = owner.split(".")
    try:
        if family == 4 and labels[4:] == ["in-addr", "arpa"]:
            return int.from_bytes(bytes(int(x) for x in reversed(labels[:4])), "big")
        if family == 6 and labels[32:] == ["ip6", "arpa"]:
            return int("".join(reversed(labels[:32])), 16)
    except ValueError:
        return None
    return None


def _transfer(server: str, zone: str, port: int, timeout: float):
    """(owner, type, value) of every PTR / A / AAAA record of an AXFR, via dnspython.

    dnspython fetches the messages; the records are read with the codec above
    (building dnspython's rdata objects for 130,000 records costs seconds).
    """
    q = dns.message.make_query(zone, dns.rdatatype.AXFR)
    wire = q.to_wire()
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    conn = socket.create_connection((server, port), timeout=timeout)
    del family
    try:
        conn.sendall(len(wire).to_bytes(2, "big") + wire)
        soa_seen = 0
        buf = b""
        while soa_seen < 2:
            data = conn.recv(1 << 20)
            if not data:
                break
            buf += data
            while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                n = int.from_bytes(buf[:2], "big")
                msg, buf = buf[2 : 2 + n], buf[2 + n :]
                rcode = msg[3] & 0xF
                if rcode:
                    raise dns.exception.DNSException(f"zone transfer of {zone} refused ({rcode})")
                for owner, rtype, value in _records(msg):
                    if rtype == SOA:
                        soa_seen += 1
                    else:
                        yield owner, rtype, value
    finally:
        conn.close()


def _records(buf: bytes):
    _qid, _flags, qd, an = struct.unpack_from("!HHHH", buf)
    off = 12
    for _ in range(qd):
        off = _skip_name(buf, off) + 4
    for _ in range(an):
        owner, off = read_name(buf, off)
        rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", buf, off)
        off += 10
        if rtype == PTR:
            yield owner, PTR, read_name(buf, off)[0]
        elif rtype == A and rdlen == 4:
            yield owner, A, int.from_bytes(buf[off : off + 4], "big")
        elif rtype == AAAA and rdlen == 16:
            yield owner, AAAA, int.from_bytes(buf[off : off + 16], "big")
        elif rtype == SOA:
            yield owner, SOA, None
        off += rdlen
