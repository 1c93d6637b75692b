"""Complaint formats → plain records: ARF (RFC 5965), X-ARF (YAML mail and v4 JSON),
CSV batches and Spamhaus DROP feeds (text and JSON lines).

Each record keeps its own original bytes (a mail whole; one line of a batch or
feed), so the same complaint arriving twice has the same SHA-256. Anything
that cannot be read raises FormatError naming the field and the reason; the
caller keeps those bytes in the rejected store. Attachments are never
decompressed, MIME nesting and header sizes are capped, so a hostile message
costs no more than its size.
"""

from __future__ import annotations

import codecs
import csv
import email.utils
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

import yaml
from netaddr import AddrFormatError, IPAddress, IPNetwork

from ..addresses import Block, parse_block
from ..errors import IpamError, Phrase
from ..models import AbuseCategory

MAX_MESSAGE_BYTES = 10 << 20
MAX_HEADER_BYTES = 256 << 10
MAX_DEPTH = 8
MAX_PARTS = 64  # MIME parts in one mail, counted before the stdlib parser recurses
MAX_JSON_DEPTH = 64
MAX_YAML_DEPTH = 32
CSV_COLUMNS = ("address", "time", "category", "description", "reporter")


class FormatError(IpamError):
    code = "unreadable_report"
    status = 422


@dataclass
class Record:
    """One complaint, read but not yet attributed."""

    source: str
    raw: bytes
    block: Block | None  # None: the report names a URL or a domain only (names.py resolves it)
    event_at: datetime
    category: AbuseCategory
    reporter: str = ""
    description: str = ""
    details: dict = field(default_factory=dict)


@dataclass
class Rejected:
    """One unreadable record (or a whole unreadable input)."""

    source: str
    raw: bytes
    field: str | None
    reason: str | Phrase  # a Phrase keeps its words apart, for the reader's language


def at_line(number: int, reason) -> Phrase:
    """`line N: reason` with the reason's own words kept (an error, a phrase or text)."""
    if isinstance(reason, IpamError):
        reason = Phrase(reason.template, **reason.params)
    return Phrase("line {number}: {reason}", number=number, reason=reason)


def why(exc: IpamError) -> Phrase:
    return Phrase(exc.template, **exc.params)


# --------------------------------------------------------------------------- helpers


def event_time(text, fieldname: str) -> datetime:
    """An RFC 5322 or ISO 8601 date with its zone, as UTC ("-0000" and no zone: UTC)."""
    if isinstance(text, datetime):
        value = text
    else:
        text = " ".join(str(text or "").split())
        if not text:
            raise FormatError("is required", fieldname)
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:  # RFC 5322: "-0000" (no zone known) is read as UTC, as the RFC says
                value = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError, OverflowError):
                raise FormatError("{text!r} is not a date", fieldname, text=text) from None
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
        if value.tzinfo is None:  # ISO 8601 without an offset: whose local time?
            raise FormatError(
                "{text!r} has no time zone; add one, e.g. +08:00 or Z", fieldname, text=text
            )
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def reported_block(text, fieldname: str) -> Block:
    text = str(text or "").strip()
    if not text:
        raise FormatError("is required", fieldname)
    try:
        return parse_block(text, fieldname)
    except IpamError as exc:
        raise FormatError(exc.template, fieldname, **exc.params) from None


def reported_source(text, fieldname: str) -> tuple[Block | None, dict]:
    """An address or prefix; else a URL or a domain name, returned as details (domain, url)
    for ipam.abuse.names to resolve through the sites register and registered domains."""
    text = str(text or "").strip()
    if not text:
        raise FormatError("is required", fieldname)
    try:
        return parse_block(text, fieldname), {}
    except IpamError as exc:
        problem = exc
    host, url = _host(text)
    if host is None:
        raise FormatError(problem.template, fieldname, **problem.params)
    details = {"domain": host, **({"url": text[:2000]} if url else {})}
    try:  # a URL whose host is an address names that address
        return parse_block(host, fieldname), details
    except IpamError:
        return None, details


def _host(text: str) -> tuple[str | None, bool]:
    """(host, whether it was a URL) of a URL or a bare domain name; (None, _) if neither."""
    from urllib.parse import urlsplit

    url = "://" in text
    try:
        host = urlsplit(text if url else f"//{text}").hostname
    except ValueError:
        return None, url
    if not host:
        return None, url
    host = host.rstrip(".").lower()
    if any(ch.isdigit() for ch in host.split(".")[-1]) and host.replace(".", "").isdigit():
        return host, url  # a dotted address: parse_block judges it
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(
        0 < len(label) <= 63 and label.replace("-", "").isalnum() and not label.startswith("-")
        for label in labels
    ):  # fmt: skip
        return None, url
    return host, url


def category(text, fieldname: str = "category") -> AbuseCategory:
    """A category by its name, or by the words reports use for it."""
    key = str(text or "").strip().lower().replace("-", "_").replace(" ", "_")
    for member in AbuseCategory:
        if key == member.value:
            return member
    for words, member in _WORDS:
        if key in words:
            return member
    if not key:
        raise FormatError("is required", fieldname)
    return AbuseCategory.OTHER  # kept, not refused: the sender's word goes in the details


def sender_category(text) -> dict:
    """The sender's own category, for the details, when it is not one of ours."""
    word = str(text or "").strip()
    key = word.lower().replace("-", "_").replace(" ", "_")
    return {} if not word or key in _OURS else {"sender_category": word[:100]}


_WORDS = [
    ({"abuse", "spam", "unsolicited"}, AbuseCategory.SPAM),
    ({"virus", "malware", "botnet", "trojan", "c2", "cnc"}, AbuseCategory.MALWARE),
    (
        {
            "login_attack",
            "loginattack",
            "portscan",
            "port_scan",
            "ddos",
            "attack",
            "ids_alert",
            "bruteforce",
            "brute_force",
            "scan",
            "exploit",
            "hacking",
        },
        AbuseCategory.ATTACK,
    ),
    ({"copyright", "infringement", "trademark", "dmca"}, AbuseCategory.INFRINGEMENT),
    ({"phishing", "fraud", "auth_failure", "other", "info"}, AbuseCategory.OTHER),
]


_OURS = frozenset({m.value for m in AbuseCategory} | {w for words, _ in _WORDS for w in words})


# --------------------------------------------------------------------------- mail


def _parse_mail(raw: bytes) -> Message:
    """Parse a mail with the compat32 policy: headers stay plain strings.

    Why compat32: the default policy parses every header through its
    registry, several milliseconds a message; we read a dozen fields.
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        raise FormatError(
            "is over the {megabytes} MiB limit", "message", megabytes=MAX_MESSAGE_BYTES >> 20
        )
    head_end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=-1)
    if (head_end < 0 and len(raw) > MAX_HEADER_BYTES) or head_end > MAX_HEADER_BYTES:
        raise FormatError(
            "headers are over {kilobytes} KiB", "message", kilobytes=MAX_HEADER_BYTES >> 10
        )
    # The stdlib parser recurses once per nested part: count the boundaries first, so a mail
    # a thousand levels deep is refused here rather than by a RecursionError in there.
    if raw.lower().count(b"boundary=") > MAX_PARTS:
        raise FormatError("has more than {MAX_PARTS} MIME parts", "message", MAX_PARTS=MAX_PARTS)
    try:
        msg = BytesParser(policy=compat32).parsebytes(raw)
    except RecursionError:
        raise FormatError(
            "MIME parts are nested deeper than {MAX_DEPTH}", "message", MAX_DEPTH=MAX_DEPTH
        ) from None
    _check_depth(msg, 0)
    return msg


def _check_depth(part, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FormatError(
            "MIME parts are nested deeper than {MAX_DEPTH}", "message", MAX_DEPTH=MAX_DEPTH
        )
    if part.is_multipart():
        for sub in part.get_payload():
            _check_depth(sub, depth + 1)


def _parts(msg: Message) -> list[Message]:
    return list(msg.get_payload()) if msg.is_multipart() else []


def _header(msg: Message, name: str) -> str:
    """A header as one line of text: unfolded, encoded words decoded."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (LookupError, ValueError, UnicodeDecodeError):
        text = str(value)
    return " ".join(text.split())


def _text_of(part) -> str:
    if part.get_content_maintype() != "text":
        return ""
    charset = part.get_content_charset() or "us-ascii"
    try:
        codecs.lookup(charset)
    except LookupError:
        raise FormatError("unknown charset {charset!r}", "charset", charset=charset) from None
    return (part.get_payload(decode=True) or b"").decode(charset, "replace")


def _headers_of(part) -> dict:
    """The fields of a message/feedback-report part (parsed as a message of headers)."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if inner is None:
        raise FormatError("the feedback-report part is empty", "message/feedback-report")
    return {k.lower(): " ".join(str(v).split()) for k, v in inner.items()}


# Addresses no complaint is about: the reporter's own network, not the sender.
_INSIDE = [
    IPNetwork(n)
    for n in ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
              "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7", "fe80::/10")
]  # fmt: skip
_RECEIVED_FROM = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")


def _reported_message(part) -> Message | None:
    """The reported message of a message/rfc822 or text/rfc822-headers part."""
    if part is None:
        return None
    if part.get_content_type() == "message/rfc822":
        payload = part.get_payload()
        return payload[0] if isinstance(payload, list) and payload else None
    text = part.get_payload(decode=True) or b""
    return BytesParser(policy=compat32).parsebytes(text[:MAX_HEADER_BYTES], headersonly=True)


def received_source(message: Message | None) -> str | None:
    """The sending host of a reported message: the first address outside private and local
    space in its Received chain, newest hop first (the reporter's own hops are inside)."""
    if message is None:
        return None
    for value in message.get_all("Received") or []:
        head = " ".join(str(value).split()).split(" by ", 1)[0]
        for candidate in _RECEIVED_FROM.findall(head):
            try:
                address = IPAddress(candidate)
            except (AddrFormatError, ValueError):
                continue
            if not any(address in net for net in _INSIDE if net.version == address.version):
                return str(address)
    return None


def _received_time(message: Message | None) -> str | None:
    """When the reporter's system took the reported message: the newest Received's date."""
    for value in (message.get_all("Received") or []) if message is not None else []:
        when = str(value).rsplit(";", 1)
        if len(when) == 2 and when[1].strip():
            return when[1].strip()
    return message.get("Date") if message is not None else None


def _forwarded_complaint(raw: bytes, msg: Message) -> Record:
    """A complaint mailed as multipart/mixed with the reported message attached (the
    Hotmail/JMRP style): no feedback-report part, the sender found in its Received chain."""
    parts = _parts(msg)
    attached = next((p for p in parts if p.get_content_type() == "message/rfc822"), None)
    reported = _reported_message(attached)
    source = received_source(reported) or (reported.get("X-Originating-IP") if reported else None)
    human = next((p for p in parts if p.get_content_type() == "text/plain"), None)
    return Record(
        source="arf",
        raw=raw,
        block=reported_block(str(source or "").strip("[] "), "Received"),
        event_at=event_time(_received_time(reported), "Received"),
        category=AbuseCategory.SPAM,
        reporter=_header(msg, "From"),
        description=(_text_of(human) if human is not None else "").strip()[:4000],
        details={
            "arf_variant": "multipart/mixed",
            "original_subject": _header(reported, "Subject") if reported is not None else "",
            "source_from": "Received",
        },
    )


def parse_arf(raw: bytes) -> Record:
    """RFC 5965: multipart/report; report-type=feedback-report (also the forwarded style,
    and reports without Source-IP, whose sender is read from the Received chain)."""
    msg = _parse_mail(raw)
    if msg.get_content_type() == "multipart/mixed" and any(
        p.get_content_type() == "message/rfc822" for p in _parts(msg)
    ):
        return _forwarded_complaint(raw, msg)
    if msg.get_content_type() != "multipart/report" or (
        (msg.get_param("report-type") or "").lower() != "feedback-report"
    ):
        raise FormatError("is not multipart/report; report-type=feedback-report", "Content-Type")
    parts = _parts(msg)
    report = next((p for p in parts if p.get_content_type() == "message/feedback-report"), None)
    if report is None:
        raise FormatError("the message/feedback-report part is missing", "message/feedback-report")
    fields = _headers_of(report)
    for name in ("feedback-type", "user-agent", "version"):
        if not fields.get(name):
            raise FormatError("is required", name.title())
    kind = fields["feedback-type"].strip().lower()
    if kind == "not-spam":
        raise FormatError("not-spam is no complaint", "Feedback-Type")
    original_part = next(
        (p for p in parts if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")),
        None,
    )
    source = fields.get("source-ip")
    if not source:  # RFC 5965 makes it optional: the reported message's Received chain has it
        source = received_source(_reported_message(original_part))
        if source:
            fields["source-ip"], fields["source-ip-from"] = source, "Received"
    block = reported_block(source, "Source-IP")
    if "arrival-date" in fields:
        at = event_time(fields["arrival-date"], "Arrival-Date")
    elif "received-date" in fields:
        at = event_time(fields["received-date"], "Received-Date")
    else:
        raise FormatError("is required (the time of the event)", "Arrival-Date")
    human = next((p for p in parts if p.get_content_type() == "text/plain"), None)
    original = next(
        (p for p in parts if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")),
        None,
    )
    details = {
        k: v
        for k, v in fields.items()
        if k
        in (
            "feedback-type",
            "user-agent",
            "version",
            "reported-domain",
            "reported-uri",
            "original-mail-from",
            "original-rcpt-to",
            "incidents",
            "source-ip",
            "source-ip-from",
            "arrival-date",
            "authentication-results",
        )
    }
    if original is not None:
        payload = original.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if inner is not None:
            details["original_subject"] = _header(inner, "Subject")
            details["original_from"] = _header(inner, "From")
    return Record(
        source="arf",
        raw=raw,
        block=block,
        event_at=at,
        category=category("virus" if kind == "virus" else kind, "Feedback-Type"),
        reporter=_header(msg, "From"),
        description=(_text_of(human) if human is not None else "").strip()[:4000],
        details={**details, **sender_category(kind)},
    )


class _PlainYaml(yaml.SafeLoader):
    """YAML without anchors and aliases (a 700-byte "alias bomb" expands to gigabytes) and
    nested at most MAX_YAML_DEPTH deep; X-ARF reports need neither."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases are not accepted")
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise yaml.YAMLError("anchors are not accepted")
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {MAX_YAML_DEPTH}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _safe_yaml(text: str):
    try:
        return yaml.load(text, Loader=_PlainYaml)  # noqa: S506 - a SafeLoader, no aliases
    except (yaml.YAMLError, RecursionError) as exc:
        reason = str(exc).split("\n")[0] if isinstance(exc, yaml.YAMLError) else "too deep"
        raise FormatError(
            "the YAML report does not parse ({reason})", "report", reason=reason[:200]
        ) from None


def _loose_fields(text: str) -> dict | None:
    """`Key: value` lines, as X-ARF senders write them when their YAML does not parse;
    None if there are none (anchors, aliases and nesting are refused anyway)."""
    if re.search(r"(^|[:\-\[,]\s*)[&*]\w", text, re.MULTILINE):  # anchors, aliases: never
        return None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key and key.replace("-", "").replace("_", "").isalnum():
            fields[key] = value.strip().strip("'\"")
    return fields if {"source", "date"} <= {k.lower() for k in fields} else None


def _json(raw, fieldname: str):
    """JSON, refused when it is not, or nests deeper than MAX_JSON_DEPTH."""
    if _json_depth(raw) > MAX_JSON_DEPTH:
        raise FormatError(
            "is nested deeper than {MAX_JSON_DEPTH} levels",
            fieldname,
            MAX_JSON_DEPTH=MAX_JSON_DEPTH,
        )
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FormatError("is not valid JSON", fieldname) from None


def _json_depth(raw) -> int:
    """The deepest bracket nesting, counted outside strings (a linear scan, no recursion)."""
    text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_xarf_mail(raw: bytes) -> Record:
    """X-ARF 0.1/0.2: a mail marked X-ARF: YES whose second part is the YAML report."""
    msg = _parse_mail(raw)
    body = msg
    while body.get_content_type() == "multipart/signed" and _parts(body):
        body = _parts(body)[0]  # the signed content; the signature is not ours to check
    parts = _parts(body)
    if len(parts) < 2:
        raise FormatError("an X-ARF mail needs a text part and a YAML report part", "message")
    text = _text_of(parts[1])
    if len(text) > 1 << 20:
        raise FormatError("the YAML report is over 1 MiB", "report")
    try:
        data = _safe_yaml(text)
    except FormatError:
        data = _loose_fields(text)  # senders write "Schema-URL: http: //…": read it line by line
        if data is None:
            raise
    if not isinstance(data, dict):
        raise FormatError("the YAML report is not a mapping", "report")
    get = {str(k).lower(): v for k, v in data.items()}.get
    kind = get("report-type") or get("category")
    block, names = reported_source(get("source"), "Source")
    return Record(
        source="xarf",
        raw=raw,
        block=block,
        event_at=event_time(get("date"), "Date"),
        category=category(kind, "Report-Type"),
        reporter=str(get("reported-from") or _header(msg, "From")),
        description=_text_of(parts[0]).strip()[:4000],
        details={
            **{str(k): str(v) for k, v in data.items() if not isinstance(v, (dict, list))},
            **names,
            **sender_category(kind),
        },
    )


def parse_xarf_json(raw: bytes) -> Record:
    """XARF v4: a JSON document with Reporter and Report objects."""
    data = _json(raw, "report")
    if isinstance(data, dict) and "xarf_version" in data:
        return _xarf_v4(raw, data)
    report = data.get("Report") if isinstance(data, dict) else None
    if not isinstance(report, dict):
        raise FormatError("the Report object is missing", "Report")
    reporter = data.get("Reporter") or data.get("ReporterInfo") or {}
    if not isinstance(reporter, dict):  # a bare name: keep it as the reporter
        reporter = {"ReporterOrg": str(reporter)[:320]}
    source = report.get("SourceIp") or report.get("Source") or report.get("SourceIP")
    block, names = reported_source(source, "Report.SourceIp")
    return Record(
        source="xarf",
        raw=raw,
        block=block,
        event_at=event_time(report.get("Date"), "Report.Date"),
        category=category(
            report.get("ReportType") or report.get("ReportClass"), "Report.ReportType"
        ),
        reporter=str(
            reporter.get("ReporterOrgEmail")
            or reporter.get("ReporterContactEmail")
            or reporter.get("ReporterOrg")
            or ""
        ),
        description=str(report.get("Description") or ""),
        details={
            "Version": str(data.get("Version", "")),
            **{k: str(v) for k, v in report.items() if not isinstance(v, (dict, list))},
            **names,
            **sender_category(report.get("ReportType") or report.get("ReportClass")),
        },
    )


# XARF v4 categories (xarf.org) when the type is not one of our words.
V4_CATEGORIES = {
    "messaging": AbuseCategory.SPAM,
    "connection": AbuseCategory.ATTACK,
    "infrastructure": AbuseCategory.MALWARE,
    "copyright": AbuseCategory.INFRINGEMENT,
    "content": AbuseCategory.OTHER,
    "vulnerability": AbuseCategory.OTHER,
    "reputation": AbuseCategory.OTHER,
}


def _xarf_v4(raw: bytes, data: dict) -> Record:
    """XARF v4 (xarf_version 4.x): flat fields; the type names the abuse, the category its
    family; the event is first_seen when given, else the report's timestamp."""
    version = str(data.get("xarf_version") or "")
    if not version.startswith("4"):
        raise FormatError("{version!r} is not an XARF 4 version", "xarf_version", version=version)
    kind, family = str(data.get("type") or ""), str(data.get("category") or "").lower()
    mapped = category(kind or family or "other", "type")
    if mapped == AbuseCategory.OTHER and family in V4_CATEGORIES and sender_category(kind):
        mapped = V4_CATEGORIES[family]
    reporter = data.get("reporter") if isinstance(data.get("reporter"), dict) else {}
    when = data.get("first_seen") or data.get("timestamp")
    scalars = {k: str(v) for k, v in data.items() if not isinstance(v, dict | list)}
    evidence = data.get("evidence") if isinstance(data.get("evidence"), list) else []
    block, names = reported_source(data.get("source_identifier"), "source_identifier")
    return Record(
        source="xarf",
        raw=raw,
        block=block,
        event_at=event_time(when, "first_seen" if data.get("first_seen") else "timestamp"),
        category=mapped,
        reporter=str(reporter.get("contact") or reporter.get("org") or "")[:320],
        description=str(data.get("description") or f"{family}/{kind}".strip("/"))[:4000],
        details={
            **scalars,
            **names,
            "evidence_items": len(evidence),
            **sender_category(kind if mapped == AbuseCategory.OTHER else ""),
        },
    )


# --------------------------------------------------------------------------- batches


MAX_CSV_RECORD_LINES = 100  # a quoted field may span lines, this many at most


def _records(lines: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """(first line number, bytes) of each CSV record: a quoted field that spans lines keeps
    them together (an odd count of quotes means the record goes on), up to a bound."""
    pending: list[bytes] = []
    first = quotes = 0
    for number, raw_line in enumerate(lines, start=2):
        if not pending:
            first, quotes = number, 0
        pending.append(raw_line)
        quotes += raw_line.count(b'"')
        if quotes % 2 and len(pending) < MAX_CSV_RECORD_LINES:
            continue
        yield first, b"".join(pending)
        pending = []
    if pending:
        yield first, b"".join(pending)


def iter_csv(lines: Iterable[bytes]) -> Iterator[Record | Rejected]:
    """Rows of address,time,category,description,reporter, one at a time.

    `lines` are the batch's lines as bytes, header first; any iterable will do
    (a file opened in binary mode streams, so memory stays flat in the batch
    size). Bad rows come out as Rejected, each with its line number.
    """
    it = iter(lines)
    head = next(it, b"")
    try:
        header_text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormatError("the header is not UTF-8", "csv") from None
    if not header_text.strip():
        raise FormatError("is empty", "csv")
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    missing = [c for c in CSV_COLUMNS[1:3] if c not in header]
    if not {"address", "url", "domain"} & set(header):
        missing.insert(0, "address (or url, or domain)")
    if missing:
        raise FormatError("the header lacks {choices}", "csv", choices=", ".join(missing))
    for number, raw_line in _records(it):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            yield Rejected("csv", raw_line, "csv", at_line(number, Phrase("is not UTF-8")))
            continue
        if not line.strip():
            continue
        try:
            row = dict(zip(header, next(csv.reader([line])), strict=False))
        except csv.Error as exc:  # a field over the csv module's limit (128 KiB), say
            yield Rejected("csv", raw_line, "csv", at_line(number, str(exc)))
            continue
        try:
            named = "address" if row.get("address") else "url" if row.get("url") else "domain"
            block, names = reported_source(row.get(named), named)
            yield Record(
                source="csv",
                raw=raw_line,
                block=block,
                event_at=event_time(row.get("time"), "time"),
                category=category(row.get("category")),
                reporter=(row.get("reporter") or "").strip()[:320],
                description=(row.get("description") or "").strip()[:4000],
                details={"line": number, **names, **sender_category(row.get("category"))},
            )
        except FormatError as exc:
            yield Rejected("csv", raw_line, exc.field, at_line(number, exc))


def parse_csv(raw: bytes) -> tuple[list[Record], list[Rejected]]:
    """A whole CSV batch in memory; bad rows rejected one by one (see iter_csv)."""
    records, rejected = [], []
    for item in iter_csv(raw.splitlines(keepends=True)):
        (records if isinstance(item, Record) else rejected).append(item)
    return records, rejected


def _unix_time(value, received_at: datetime) -> datetime:
    """A feed's Unix timestamp, refused unless a whole number of seconds not after receipt."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FormatError("{value!r} is not a Unix time", "timestamp", value=value)
    try:
        number = float(value)
    except ValueError:
        raise FormatError("{value!r} is not a Unix time", "timestamp", value=value) from None
    if not (0 <= number <= received_at.timestamp() + 300):
        raise FormatError(
            "{value!r} is not a Unix time before the feed arrived", "timestamp", value=value
        )
    return datetime.fromtimestamp(int(number), UTC)


def parse_drop(raw: bytes, received_at: datetime) -> tuple[list[Record], list[Rejected]]:
    """Spamhaus DROP: `prefix ; SBLnnn` lines (comments start with ;), or JSON lines."""
    text = raw.decode("utf-8", "replace")
    feed_time = received_at
    records, rejected = [], []
    rows = []
    for line in text.splitlines(keepends=True):
        s = line.strip()
        if not s:
            continue
        if s.startswith("{"):
            try:
                obj = _json(s, "line")
            except FormatError as exc:
                rejected.append(Rejected("drop", line.encode(), "line", why(exc)))
                continue
            if not isinstance(obj, dict):
                rejected.append(
                    Rejected("drop", line.encode(), "line", Phrase("is not a JSON object"))
                )
                continue
            if obj.get("type") == "metadata":
                if obj.get("timestamp") not in (None, ""):
                    try:
                        feed_time = _unix_time(obj["timestamp"], received_at)
                    except FormatError as exc:  # the feed's rows keep the time of receipt
                        rejected.append(Rejected("drop", line.encode(), "timestamp", why(exc)))
                continue
            if obj.get("cidr") in (None, "") and obj.get("asn") not in (None, ""):
                reason = Phrase("an ASN-DROP entry (AS{asn}) names no addresses", asn=obj["asn"])
                rejected.append(Rejected("drop", line.encode(), "cidr", reason))
                continue
            rows.append((line, obj.get("cidr"), obj.get("sblid", "")))
        elif s.startswith(";"):
            if s.lower().startswith("; last-modified:"):
                try:
                    feed_time = event_time(s.split(":", 1)[1], "Last-Modified")
                except FormatError:
                    pass
        else:
            prefix, _, sbl = s.partition(";")
            rows.append((line, prefix.strip(), sbl.strip()))
    for line, prefix, sbl in rows:
        try:
            block = reported_block(prefix, "cidr")
        except FormatError as exc:
            rejected.append(Rejected("drop", line.encode(), exc.field, why(exc)))
            continue
        records.append(
            Record(
                source="drop",
                raw=line.encode(),
                block=block,
                event_at=feed_time,
                category=AbuseCategory.SPAM,
                reporter="Spamhaus DROP",
                description=f"Spamhaus DROP listing {sbl}".strip(),
                details={"sblid": sbl},
            )
        )
    return records, rejected


# --------------------------------------------------------------------------- dispatch


def detect(raw: bytes) -> str:
    """Which format arrived: arf, xarf-mail, xarf-json, csv, shadowserver or drop."""
    head = raw[:4096].lstrip()
    if is_shadowserver(head):
        return "shadowserver"
    if head.startswith(b"{"):
        first = head.split(b"\n", 1)[0]
        return "drop" if b'"cidr"' in first or b'"sblid"' in first else "xarf-json"
    if head.startswith(b";") or (b";" in head.split(b"\n", 1)[0] and b"SBL" in head[:200]):
        return "drop"
    top = head.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    if b":" in top.split(b"\n", 1)[0] and not top.lower().startswith(b"address,"):
        marked = b"\n" + top.lower()
        return "xarf-mail" if b"\nx-arf:" in marked or b"\nx-xarf:" in marked else "arf"
    return "csv"


# --------------------------------------------------------------------------- Shadowserver

SHADOWSERVER_IP = ("ip", "src_ip")
MAX_ZIP_MEMBERS = 16
MAX_UNZIPPED = 64 << 20  # bytes out of one mail's archives, all members together
MAX_ZIP_RATIO = 100  # a member may be at most this many times its compressed size


def is_shadowserver(head: bytes) -> bool:
    """A Shadowserver report CSV: its header starts with "timestamp" and names the IP."""
    first = head.split(b"\n", 1)[0].decode("utf-8-sig", "replace").strip().lower()
    columns = [c.strip().strip('"') for c in first.split(",")]
    return (
        bool(columns) and columns[0] == "timestamp" and any(c in columns for c in SHADOWSERVER_IP)
    )


def _report_type(name: str) -> str:
    """The report type from a Shadowserver file name: 2026-07-01-scan_ssh-asn.csv -> scan_ssh."""
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    parts = stem.split("-")
    return parts[3] if len(parts) >= 5 and all(p.isdigit() for p in parts[:3]) else stem


def _shadowserver_category(report_type: str, row: dict) -> AbuseCategory:
    words = f"{report_type} {row.get('tag', '')} {row.get('infection', '')}".lower()
    if row.get("infection") or any(w in words for w in ("drone", "botnet", "sinkhole", "malware")):
        return AbuseCategory.MALWARE
    if any(w in words for w in ("brute", "honeypot", "attack", "ddos", "scan_ssh_brute")):
        return AbuseCategory.ATTACK
    if "spam" in words:
        return AbuseCategory.SPAM
    return AbuseCategory.OTHER  # exposed services, vulnerable hosts: kept, the type recorded


def parse_shadowserver(raw: bytes, report_type: str = "") -> tuple[list[Record], list[Rejected]]:
    """A Shadowserver report CSV: one record per row (its bytes: the header and the row, so
    each stands on its own); times are UTC as Shadowserver documents them."""
    lines = iter(raw.splitlines(keepends=True))
    head = next(lines, b"")
    header_text = head.decode("utf-8-sig", "replace")
    header = [h.strip().lower() for h in next(csv.reader([header_text]), [])]
    ip_column = next((c for c in SHADOWSERVER_IP if c in header), None)
    if not header or header[0] != "timestamp" or ip_column is None:
        raise FormatError("is not a Shadowserver report (timestamp and ip columns)", "csv")
    records, rejected = [], []
    for number, raw_line in _records(lines):
        if not raw_line.strip():
            continue
        evidence = head.rstrip(b"\r\n") + b"\n" + raw_line
        try:
            values = next(csv.reader([raw_line.decode("utf-8")]))
            row = dict(zip(header, values, strict=False))
            when = (row.get("timestamp") or "").strip()
            if when and "T" not in when and "+" not in when and not when.endswith("Z"):
                when = when.replace(" ", "T") + "+00:00"  # Shadowserver: UTC, said once
            kind = report_type or "shadowserver"
            records.append(
                Record(
                    source="shadowserver",
                    raw=evidence,
                    block=reported_block(row.get(ip_column), ip_column),
                    event_at=event_time(when, "timestamp"),
                    category=_shadowserver_category(kind, row),
                    reporter="Shadowserver",
                    description=f"Shadowserver {kind}"[:4000],
                    details={
                        "line": number,
                        "report_type": kind,
                        "sender_category": kind,
                        **{k: v[:200] for k, v in row.items() if k in
                           ("port", "protocol", "hostname", "tag", "infection", "asn")},
                    },
                )
            )  # fmt: skip
        except (FormatError, UnicodeDecodeError, csv.Error) as exc:
            reason = exc if isinstance(exc, FormatError) else str(exc)
            fieldname = exc.field if isinstance(exc, FormatError) else "csv"
            rejected.append(Rejected("shadowserver", evidence, fieldname, at_line(number, reason)))
    return records, rejected


def _attached_tables(msg: Message) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the Shadowserver CSVs a mail carries, plain or zipped, each
    archive opened under caps on members, total size and compression ratio."""
    tables, unzipped = [], 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = part.get_filename() or ""
        kind = part.get_content_type()
        payload = part.get_payload(decode=True) or b""
        if name.lower().endswith(".zip") or kind in (
            "application/zip",
            "application/x-zip-compressed",
        ):
            try:
                archive = zipfile.ZipFile(io.BytesIO(payload))
                members = [m for m in archive.infolist() if not m.is_dir()]
            except (zipfile.BadZipFile, ValueError):
                raise FormatError(
                    "{name} is not a readable zip", "attachment", name=name or "attachment"
                ) from None
            if len(members) > MAX_ZIP_MEMBERS:
                raise FormatError(
                    "{name} holds more than {MAX_ZIP_MEMBERS} files",
                    "attachment",
                    name=name,
                    MAX_ZIP_MEMBERS=MAX_ZIP_MEMBERS,
                )
            for member in members:
                if not member.filename.lower().endswith(".csv"):
                    continue
                unzipped += member.file_size
                if unzipped > MAX_UNZIPPED or member.file_size > MAX_ZIP_RATIO * max(
                    member.compress_size, 1
                ):
                    raise FormatError(
                        "{name} unpacks to more than allowed (size or ratio)",
                        "attachment",
                        name=name,
                    )
                with archive.open(member) as fh:
                    data = fh.read(member.file_size + 1)
                if len(data) > member.file_size:  # the archive lied about the size
                    raise FormatError(
                        "{name} unpacks to more than it says", "attachment", name=name
                    )
                if is_shadowserver(data[:4096]):
                    tables.append((member.filename, data))
        elif name.lower().endswith(".csv") or kind == "text/csv":
            if is_shadowserver(payload[:4096]):
                tables.append((name, payload))
    return tables


def parse_report_mail(raw: bytes) -> tuple[list[Record], list[Rejected]] | None:
    """A mail whose attachments are Shadowserver reports: their rows; None if it has none."""
    msg = _parse_mail(raw)
    tables = _attached_tables(msg)
    if not tables:
        return None
    records, rejected = [], []
    for name, data in tables:
        got, bad = parse_shadowserver(data, _report_type(name))
        records += got
        rejected += bad
    return records, rejected


def read(raw: bytes, received_at: datetime, kind: str | None = None, *, name: str = ""):
    """(records, rejected) of one input; an unreadable whole input raises FormatError.
    `name`, a file name, tells a Shadowserver report's type."""
    kind = kind or detect(raw)
    if kind == "csv" and is_shadowserver(raw[:4096]):  # posted or named as plain CSV
        kind = "shadowserver"
    if kind == "shadowserver":
        return parse_shadowserver(raw, _report_type(name) if name else "")
    if kind == "arf":
        reports = parse_report_mail(raw)
        if reports is not None:
            return reports
        return [parse_arf(raw)], []
    if kind == "xarf-mail":
        return [parse_xarf_mail(raw)], []
    if kind == "xarf-json":
        return [parse_xarf_json(raw)], []
    if kind == "csv":
        return parse_csv(raw)
    if kind == "drop":
        return parse_drop(raw, received_at)
    raise FormatError("{kind!r} is not a known format", "format", kind=kind)
