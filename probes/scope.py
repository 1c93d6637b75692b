"""PROBE_SCOPE (DESIGN.md invariant 7): the only addresses a probe may send to.

Every target is checked against the scope before the first packet of a run
leaves; a run with any target outside it is refused whole, naming the target.
The default is loopback only; the lab and the demo set their own prefixes.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from netaddr import AddrFormatError, IPAddress, IPNetwork

from ipam.errors import ValidationError

DEFAULT_SCOPE = "127.0.0.0/8,::1/128"


@dataclass(frozen=True)
class ProbeScope:
    """Sorted, merged integer ranges per address family."""

    text: str
    ranges: dict  # family -> (starts, ends)

    @classmethod
    def parse(cls, text: str | None) -> ProbeScope:
        text = (text or DEFAULT_SCOPE).strip()
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for item in filter(None, (p.strip() for p in text.replace(" ", ",").split(","))):
            try:
                net = IPNetwork(item)
            except (AddrFormatError, ValueError, TypeError):
                raise ValidationError(
                    "{item!r} is not a CIDR prefix", "PROBE_SCOPE", item=item
                ) from None
            spans[net.version].append((net.first, net.last))
        ranges = {}
        for family, items in spans.items():
            items.sort()
            merged: list[list[int]] = []
            for first, last in items:
                if merged and first <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], last)
                else:
                    merged.append([first, last])
            ranges[family] = ([m[0] for m in merged], [m[1] for m in merged])
        return cls(text, ranges)

    def contains(self, family: int, first: int, last: int | None = None) -> bool:
        last = first if last is None else last
        starts, ends = self.ranges.get(family, ((), ()))
        i = bisect.bisect_right(starts, first) - 1
        return i >= 0 and ends[i] >= last

    def check_prefix(self, prefix: str | IPNetwork) -> IPNetwork:
        net = IPNetwork(str(prefix))
        if not self.contains(net.version, net.first, net.last):
            raise ValidationError(
                "{net} is outside the probe scope ({text}); nothing was sent",
                "targets",
                net=net,
                text=self.text,
            )
        return net

    def check_targets(self, family: int, targets) -> None:
        """Refuse the whole list if any address is outside the scope (before any send)."""
        starts, ends = self.ranges.get(family, ((), ()))
        for value in targets:
            i = bisect.bisect_right(starts, value) - 1
            if i < 0 or ends[i] < value:
                raise ValidationError(
                    "{address} is outside the probe scope ({text}); nothing was sent",
                    "targets",
                    address=IPAddress(value, family),
                    text=self.text,
                )
