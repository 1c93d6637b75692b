"""Address parsing, normalisation and the fixed-width storage form.

Every address and prefix is stored as (family, first, last, prefixlen) with
`first` and `last` as 16-byte big-endian strings: byte order equals numeric
order on SQLite (memcmp on BLOB) and PostgreSQL (bytea), so B-tree indexes
answer containment and range questions on both back-ends.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import netaddr

from .errors import ValidationError

WIDTH = {4: 32, 6: 128}
IPV4_MAPPED = netaddr.IPNetwork("::ffff:0:0/96")


def to_bytes(value: int) -> bytes:
    """Return the 16-byte big-endian storage form of an address integer."""
    return value.to_bytes(16, "big")


def from_bytes(value: bytes) -> int:
    return int.from_bytes(value, "big")


@dataclass(frozen=True, order=True)
class Block:
    """A CIDR block: family 4 or 6, first and last address as integers, prefix length."""

    family: int
    first: int
    prefixlen: int

    @property
    def width(self) -> int:
        return WIDTH[self.family]

    @property
    def size(self) -> int:
        return 1 << (self.width - self.prefixlen)

    @property
    def last(self) -> int:
        return self.first + (1 << (WIDTH[self.family] - self.prefixlen)) - 1

    @property
    def network(self) -> netaddr.IPNetwork:
        return netaddr.IPNetwork((self.first, self.prefixlen), version=self.family)

    @property
    def is_single(self) -> bool:
        return self.prefixlen == self.width

    def __str__(self) -> str:
        if self.family == 4:  # the common case, without building a netaddr object
            text = socket.inet_ntoa(self.first.to_bytes(4, "big"))
            return text if self.prefixlen == 32 else f"{text}/{self.prefixlen}"
        if self.is_single:
            return str(netaddr.IPAddress(self.first, self.family))
        return str(self.network)

    def columns(self) -> dict:
        """Return the block in storage form (the columns of models.AddressMixin)."""
        return {
            "family": self.family,
            "first": to_bytes(self.first),
            "last": to_bytes(self.last),
            "prefixlen": self.prefixlen,
        }

    def contains(self, other: Block) -> bool:
        return self.family == other.family and self.first <= other.first and other.last <= self.last

    def overlaps(self, other: Block) -> bool:
        return self.family == other.family and self.first <= other.last and other.first <= self.last

    def buddy(self) -> Block:
        """Return the other half of this block's parent (the block it merges with)."""
        return Block(self.family, self.first ^ self.size, self.prefixlen)

    def parent(self) -> Block:
        return Block(self.family, self.first & ~self.size, self.prefixlen - 1)

    def covering_firsts(self) -> list[tuple[int, int]]:
        """Return (first, prefixlen) of every CIDR block that contains this one, itself included."""
        out = []
        for plen in range(self.prefixlen, -1, -1):
            mask = ((1 << plen) - 1) << (self.width - plen)
            out.append((self.first & mask, plen))
        return out

    @classmethod
    def from_network(cls, net: netaddr.IPNetwork) -> Block:
        return cls(net.version, int(net.network), net.prefixlen)

    @classmethod
    def of(cls, family: int, first: bytes | int, prefixlen: int) -> Block:
        if isinstance(first, bytes):
            first = from_bytes(first)
        return cls(family, first, prefixlen)


def exclude(outer: Block, inner: Block) -> list[Block]:
    """Return the maximal CIDR blocks of `outer` minus `inner` (inner must lie inside outer)."""
    return [Block.from_network(n) for n in netaddr.cidr_exclude(outer.network, inner.network)]


def range_to_blocks(family: int, first: int, last: int) -> list[Block]:
    """Return the maximal CIDR blocks covering [first, last] exactly."""
    if first > last:
        return []
    start = netaddr.IPAddress(first, family)
    end = netaddr.IPAddress(last, family)
    return [Block.from_network(n) for n in netaddr.iprange_to_cidrs(start, end)]


def _unmap(net: netaddr.IPNetwork) -> netaddr.IPNetwork:
    """Turn ::ffff:a.b.c.d/n into a.b.c.d/(n-96) so one address is never stored twice."""
    if net.version == 6 and net.prefixlen >= 96 and net.ip in IPV4_MAPPED:
        return netaddr.IPNetwork((int(net.ip) & 0xFFFFFFFF, net.prefixlen - 96), version=4)
    return net


def parse_block(text, field: str = "prefix", *, allow_host_bits: bool = False) -> Block:
    """Parse an address or CIDR prefix; a bare address is a single-address block.

    Refuses malformed input, zone indices and set host bits (naming the network
    that was probably meant); IPv4-mapped IPv6 is normalised to IPv4.
    """
    if isinstance(text, Block):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(
            "is required: give an address or a prefix such as 198.18.0.0/24", field
        )
    raw = text.strip()
    if not raw.isprintable():  # NUL, CR, LF...: never an address, and some break the parsers
        raise ValidationError("{raw!r} contains control characters", field, raw=raw)
    if ":" not in raw:  # fast path for plain IPv4 (bulk imports parse millions)
        address, slash, length = raw.partition("/")
        try:  # inet_pton is as strict as netaddr (dotted quad, no leading zeros)
            value = int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
        except OSError:
            value = None  # fall through for the precise error message
        if value is not None and not slash:
            return Block(4, value, 32)
        if value is not None and length.isdigit() and len(length) <= 2 and int(length) <= 32:
            plen = int(length)
            if allow_host_bits or not value & ((1 << (32 - plen)) - 1):
                return Block(4, value & ~((1 << (32 - plen)) - 1) & 0xFFFFFFFF, plen)
    if "%" in raw:
        raise ValidationError("{raw!r} has a zone index; give a global address", field, raw=raw)
    try:
        net = netaddr.IPNetwork(raw)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise ValidationError(
            "{raw!r} is not a valid IPv4 or IPv6 address or prefix", field, raw=raw
        ) from None
    if "/" in raw:
        length = raw.rsplit("/", 1)[1]
        if not length.isdigit():
            raise ValidationError("{raw!r} has an invalid prefix length", field, raw=raw)
    net = _unmap(net)
    if not allow_host_bits and net.ip != net.network:
        raise ValidationError(
            "{raw!r} has host bits set; did you mean {cidr}?", field, raw=raw, cidr=net.cidr
        )
    return Block(net.version, int(net.network), net.prefixlen)


def parse_address(text, field: str = "address") -> Block:
    """Parse one address (no prefix length), IPv4-mapped IPv6 normalised to IPv4."""
    if isinstance(text, Block):
        if not text.is_single:
            raise ValidationError("{text} is a prefix; give a single address", field, text=text)
        return text
    if isinstance(text, str) and "/" in text:
        raise ValidationError(
            "{text!r} is a prefix; give a single address", field, text=text.strip()
        )
    return parse_block(text, field)


def check_prefixlen(prefixlen, family: int, field: str = "prefixlen") -> int:
    """Validate a requested prefix length for a family and return it as int."""
    try:
        plen = int(prefixlen)
    except (TypeError, ValueError):
        raise ValidationError(
            "{prefixlen!r} is not a prefix length", field, prefixlen=prefixlen
        ) from None
    if not 0 <= plen <= WIDTH[family]:
        raise ValidationError(
            "/{plen} is not a valid IPv{family} prefix length (0 to {width})",
            field,
            plen=plen,
            family=family,
            width=WIDTH[family],
        )
    return plen
