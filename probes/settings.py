"""The probe settings (IPAM_PROBE_*), parsed and checked once: at start, and before a run.

Why here and light (no scapy): the web app checks them when it starts, so a
wrong DNS server or timeout is refused then, naming the setting, instead of
failing after a whole sweep with a resolver's message and a misleading count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from netaddr import AddrFormatError, IPAddress

from ipam.abuse.ingest import DEFAULT_POLICY, Policy
from ipam.errors import Phrase, ValidationError
from ipam.validation import domain_list

from .scope import ProbeScope


@dataclass(frozen=True)
class DnsServer:
    host: str  # an address literal: probes never resolve a server's name
    port: int = 53


def _items(value) -> list[str]:
    return [x for x in str(value or "").replace(",", " ").split() if x]


def dns_server(text: str, key: str = "IPAM_PROBE_DNS") -> DnsServer:
    """'198.18.0.53', '198.18.0.53:5353', '2001:db8::53' or '[2001:db8::53]:5353'."""
    host, port = text, "53"
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValidationError("{text!r} is not [address]:port", key, text=text)
        port = rest[1:] or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        IPAddress(host)
    except (AddrFormatError, ValueError, TypeError):
        raise ValidationError(
            "{text!r} is not an IP address (with an optional :port); give the server's address, "
            "not its name",
            key,
            text=text,
        ) from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValidationError("{text!r}: the port must be 1 to 65535", key, text=text)
    return DnsServer(host, int(port))


def _number(config, key: str, default: float, low: float, high: float, whole=False):
    raw = config.get(key)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw).strip()) if whole else float(str(raw).strip())
    except ValueError:
        kind = Phrase("a whole number") if whole else Phrase("a number")
        raise ValidationError("{raw!r} is not {kind}", key, raw=raw, kind=kind) from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ValidationError(
            "{raw!r} is outside {low:g} to {high:g}", key, raw=raw, low=low, high=high
        )
    return value


@dataclass
class Settings:
    scope: ProbeScope
    netns: str | None = None
    dns_servers: list[DnsServer] = field(default_factory=list)
    blocklists: list[str] = field(default_factory=list)
    timeout: float = 1.0
    retries: int = 1
    rate: float | None = 20000.0  # packets per second, per run
    abuse_policy: Policy = DEFAULT_POLICY  # blocklist hits become abuse reports

    @classmethod
    def from_config(cls, config) -> Settings:
        """Every IPAM_PROBE_* setting checked; a ValidationError names the one that is wrong."""
        try:
            scope = ProbeScope.parse(config.get("IPAM_PROBE_SCOPE"))
        except ValidationError as exc:
            raise ValidationError(exc.template, "IPAM_PROBE_SCOPE", **exc.params) from None
        netns = str(config.get("IPAM_PROBE_NETNS") or "").strip() or None
        if netns and (len(netns) > 64 or not netns.replace("-", "").replace("_", "").isalnum()):
            raise ValidationError(
                "{netns!r} is not a network namespace name", "IPAM_PROBE_NETNS", netns=netns
            )
        rate = _number(config, "IPAM_PROBE_RATE", 20000.0, 0, 10_000_000)
        return cls(
            scope=scope,
            netns=netns,
            dns_servers=[dns_server(x) for x in _items(config.get("IPAM_PROBE_DNS"))],
            blocklists=domain_list(
                " ".join(_items(config.get("IPAM_PROBE_BLOCKLISTS"))), "IPAM_PROBE_BLOCKLISTS"
            ),
            timeout=_number(config, "IPAM_PROBE_TIMEOUT", 1.0, 0.01, 60),
            retries=_number(config, "IPAM_PROBE_RETRIES", 1, 0, 10, whole=True),
            rate=rate or None,
            abuse_policy=Policy.from_config(config),
        )
