"""Reports, certificates, signing keys and the sites register on the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app

from ipam.errors import IpamError, ValidationError

from ..extensions import db
from .common import (
    IpamGroup,
    Refusal,
    actor_option,
    cli_message,
    ipam,
    json_option,
    lang_option,
    lazy,
    transaction,
)

# Loaded when a command first uses them (find_spec of a submodule would import its package,
# so the reports' submodules are imported inside the commands).
reports = lazy("ipam.reports")
certificates = lazy("ipam.certificates")
sites = lazy("ipam.sites")
listing = lazy("ipam.listing")


class _Issued:
    def __getattr__(self, name):
        from ipam.reports import issued as module

        return getattr(module, name)


issued = _Issued()


def _zone() -> str:
    return current_app.config["IPAM_TIMEZONE"]


class ReportGroup(IpamGroup):
    """`ipam report NAME ...` is `ipam report issue NAME ...`."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and args[0] in reports.REPORTS:
            return "issue", self.commands["issue"], args
        return super().resolve_command(ctx, args)


@ipam.group("report", cls=ReportGroup)
def report_group():
    """The reports regulators ask for: `ipam report list`; `ipam report NAME --format pdf ...`
    issues one (the same as `ipam report issue NAME`); `ipam report draft NAME` keeps none."""


@report_group.command("list")
def report_list():
    """The reports, with the parameters each takes."""
    for r in reports.REPORTS.values():
        click.echo(f"{r.name:18} {r.zh} / {r.en}  [{', '.join(sorted(r.uses))}]")


def _report_options(fn):
    options = [
        click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "pdf"]), default="csv"),
        click.option("--lang", type=click.Choice(["zh", "en"]), default="zh"),
        click.option("--from", "start", help="a date or a local time (YYYY-MM-DD [HH:MM])"),
        click.option("--to", "end", help="a date (included) or a local time"),
        click.option("--at", help="as of this instant (default now)"),
        click.option("--customer", help="one customer (id, credit code or name)"),
        click.option("--pool", help="one pool (id, name or prefix)"),
        click.option(
            "--deadline",
            "deadline_days",
            type=int,
            help="days to file a change (ip_filing_changes)",
        ),
        click.option("--audit-actor", help="audit_log: only this actor"),
        click.option("--object", "object_type", help="audit_log: only this object type"),
        click.option("--action", help="audit_log: actions starting with this"),
        click.option("--reveal", help="REASON: personal data in full (audited)"),
        click.option(
            "--out",
            "-o",
            type=click.Path(dir_okay=False, path_type=Path),
            help="write the file here (default: the issued file's name)",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _prepare(s, name, reveal, asked: dict):
    """The report and its parameters from the shared options (ipam.reports.prepare checks)."""
    asked = dict(asked)
    asked["actor"] = asked.pop("audit_actor")  # --actor is who issues; this filters the log
    return reports.prepare(s, name, listing.EVERYONE, zone=_zone(), reveal=bool(reveal), **asked)


@report_group.command("issue")
@click.argument("name")
@_report_options
@actor_option
def report_issue(name, fmt, lang, reveal, out, actor, **asked):
    """Issue report NAME: the file is written, kept in the ledger and its SHA-256 audited."""
    with transaction() as s:
        report, params = _prepare(s, name, reveal, asked)
        record = issued.issue(s, report.name, params, fmt, lang, actor=actor, reason=reveal)
        content, file_name, rid = bytes(record.content), record.file_name, record.id
        rows, digest, anchor = record.rows, record.sha256, (record.anchor_seq, record.anchor_hash)
    path = out or Path(file_name)
    path.write_bytes(content)
    click.echo(f"report {rid} issued: {path} ({rows} rows, {len(content)} bytes)")
    click.echo(f"sha256 {digest}; audit anchor {anchor[0]} {anchor[1]}")


@report_group.command("draft")
@click.argument("name")
@_report_options
@actor_option
def report_draft(name, fmt, lang, reveal, out, actor, **asked):
    """Write report NAME to --out (or stdout) without keeping it."""
    with transaction() as s:
        report, params = _prepare(s, name, reveal, asked)
        if out is None:
            n = issued.export(
                s, report, params, fmt, lang, sys.stdout.buffer, actor=actor, reason=reveal
            )
        else:
            with open(out, "wb") as fh:
                n = issued.export(s, report, params, fmt, lang, fh, actor=actor, reason=reveal)
    if out is not None:
        click.echo(f"draft written: {out} ({n} rows)")


@report_group.command("get")
@click.argument("issued_id", type=int)
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path))
def report_get(issued_id, out):
    """Write an issued report (or certificate) again, byte for byte."""
    with transaction() as s:
        record = issued.get_issued(s, issued_id)
        content, name = bytes(record.content), record.file_name
    path = out or Path(name)
    path.write_bytes(content)
    click.echo(f"{path}: {len(content)} bytes")


@report_group.command("issued")
@click.option("--limit", type=int, default=20)
@json_option
def report_issued(limit, as_json):
    """What was issued, newest first."""
    rows, total = issued.list_issued(db.session, window=listing.Window(limit, 0))
    if as_json:
        from .common import echo_json

        return echo_json(rows, "reports:IssuedOut")
    for r in rows:
        click.echo(
            f"{r.id:6} {r.issued_at:%Y-%m-%d %H:%M} {r.file_name:48} {r.rows:8} rows  {r.issued_by}"
        )
    click.echo(f"{total} issued")


# certificates and keys -----------------------------------------------------------
def _keyring():
    return certificates.Keyring.from_config(current_app.config)


@ipam.group("keys")
def keys_group():
    """The Ed25519 keys that sign certificates."""


@keys_group.command("init")
def keys_init():
    """Create the signing key in the instance folder (or record IPAM_SIGNING_KEY's), once."""
    kid, created = _keyring().init()
    where = current_app.config["IPAM_KEYS_DIR"]
    click.echo(f"signing key {kid} {'created in' if created else 'in use; public keys in'} {where}")


@keys_group.command("rotate")
def keys_rotate():
    """A new signing key; the old public keys stay, so old certificates still verify."""
    kid = _keyring().rotate()
    click.echo(f"signing key {kid} now signs; earlier keys still verify")


@keys_group.command("list")
def keys_list():
    """The keys certificates are checked against (* signs now)."""
    ring = _keyring()
    current = ring.current_id()
    for kid in ring.ids():
        click.echo(f"{'*' if kid == current else ' '} {kid}")


@ipam.group("certificate")
def certificate_group():
    """Signed statements of who held an address at an instant."""


@certificate_group.command("issue")
@click.argument("address")
@click.option("--at", help="ISO 8601 with a zone, or a local time (default now)")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh")
@click.option("--reveal", help="REASON: personal data in full (audited)")
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="folder for the JSON and the PDF",
)
@actor_option
def certificate_issue(address, at, lang, reveal, out, actor):
    """Issue a signed certificate for ADDRESS at --at: certificate-N.json and its PDF."""
    from ipam.validation import local_instant

    when = local_instant(at, "at", _zone()) if at else None
    with transaction() as s:
        record, content = certificates.issue(
            s,
            address,
            when,
            actor=actor,
            keyring=_keyring(),
            issuer=current_app.config["IPAM_PROVIDER_NAME"],
            reason=reveal,
        )
        pdf = certificates.render_pdf(s, record, actor=actor, lang=lang)
        pdf_bytes, pdf_name, name = bytes(pdf.content), pdf.file_name, record.file_name
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(content)
    (out / pdf_name).write_bytes(pdf_bytes)
    body = json.loads(content)["certificate"]
    click.echo(f"certificate {body['serial']}: {out / name} and {out / pdf_name}")
    click.echo(
        f"{body['answer']['status']}; anchor {body['anchor']['seq']} {body['anchor']['hash']}"
    )


@certificate_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a public key (PEM) to trust besides the instance's keys",
)
@click.option("--offline", is_flag=True, help="check form and signature only, not the database")
def certificate_verify(file, key_file, offline):
    """Check a certificate (JSON or PDF); exit 1 naming what failed."""
    extra = certificates.load_public(key_file.read_bytes(), "--key") if key_file else None
    data = file.read_bytes()
    if offline:
        verdict = certificates.verify(data, _keyring(), extra_key=extra)
    else:
        with transaction() as s:
            verdict = certificates.verify(data, _keyring(), extra_key=extra, session=s)
    for line in verdict.checks:
        click.echo(f"ok: {line}")
    for line in verdict.problems:
        click.echo(f"FAILED: {line}", err=True)
    if not verdict.ok:
        sys.exit(1)
    body = verdict.certificate
    click.echo(
        f"certificate {body['serial']} is valid: {body['question']['address']} at "
        f"{body['question']['at']} -> {body['answer']['status']}"
    )


# sites ------------------------------------------------------------------------------
@ipam.group("site")
def site_group():
    """The sites register (clauses 2, 3, 4, 6)."""


@site_group.command("add")
@click.argument("customer")
@click.option("--name", required=True)
@click.option("--domain", required=True)
@click.option("--address", "addresses", multiple=True, required=True, help="repeatable")
@click.option("--url", "urls", multiple=True)
@click.option("--icp", "icp_number")
@click.option("--category", default="general")
@click.option("--approval", "approval_ref")
@click.option("--interactive", help="forum | bbs | blog | chat")
@click.option("--admin", "admins", multiple=True, help="an admin account (repeatable)")
@click.option("--sublessee", "sublessee_id", type=int)
@actor_option
def site_add(
    customer,
    name,
    domain,
    addresses,
    urls,
    icp_number,
    category,
    approval_ref,
    interactive,
    admins,
    sublessee_id,
    actor,
):
    """Register a site of CUSTOMER (or of its sublessee)."""
    from ipam.customers import get_customer

    data = {
        "name": name,
        "domain": domain,
        "addresses": list(addresses),
        "urls": list(urls),
        "icp_number": icp_number,
        "category": category,
        "approval_ref": approval_ref,
        "interactive": interactive,
        "admin_accounts": [{"account": a} for a in admins],
        "sublessee_id": sublessee_id,
    }
    with transaction() as s:
        site = sites.add_site(s, get_customer(s, customer), data, actor=actor)
        click.echo(f"site {site.id} registered: {site.domain}")


@site_group.command("list")
@click.option("--customer")
def site_list(customer):
    """Current sites."""
    from ipam.customers import get_customer

    cid = get_customer(db.session, customer).id if customer else None
    rows, total = sites.list_sites(db.session, sites.SiteFilter(customer_id=cid))
    for site in rows:
        click.echo(
            f"{site.id:5} {site.domain:30} icp={site.icp_number or '-':20} "
            f"{site.category:12} {site.interactive or '-':6} {' '.join(site.addresses)}"
        )
    click.echo(f"{total} sites")


@site_group.command("close")
@click.argument("site_id", type=int)
@click.option("--reason", required=True)
@actor_option
def site_close(site_id, reason, actor):
    """The site no longer runs."""
    with transaction() as s:
        sites.close_site(s, site_id, reason, actor=actor)
    click.echo(f"site {site_id} closed")


# search ------------------------------------------------------------------------------
@ipam.command("search")
@click.argument("text")
@json_option
def search_cmd(text, as_json):
    """Find an address or prefix, a customer (name, credit code), a sublessee, a domain, a case
    or incident number."""
    from ipam.search import search

    hits = search(db.session, text, listing.EVERYONE)
    if as_json:
        click.echo(json.dumps([vars(h) for h in hits], ensure_ascii=False, indent=2))
        return
    for h in hits:
        click.echo(f"{h.kind:10} {h.key:>8}  {h.title}  {h.detail}")
    click.echo(f"{len(hits)} found")


# lists -------------------------------------------------------------------------------
@ipam.command("list")
@click.argument("name", required=False)
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="a filter the list takes (ipam list shows them), e.g. state=all")  # fmt: skip
@click.option("--sort", help="a column's key; -key for descending")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@click.option("--csv", "as_csv", is_flag=True, help="every filtered row as CSV (UTF-8 with BOM)")
@lang_option
@json_option
def list_cmd(name, filters, sort, limit, offset, as_csv, lang, as_json):
    """A list filtered, sorted and paged, or exported whole as CSV (no NAME: the lists)."""
    from ipam import lists

    if not name:
        for d in lists.LISTS.values():
            keys = " ".join(f.key for f in d.filters)
            click.echo(f"{d.name:12} {d.title(lang)}  [{keys}]")
        return
    try:
        args = {}
        for item in filters:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValidationError("{item!r} is not KEY=VALUE", "filter", item=item)
            args[key.strip()] = value.strip()
        listdef = lists.get_list(name)
        unknown = set(args) - {f.key for f in listdef.filters}
        if unknown:
            raise ValidationError(
                "{key!r} is not a filter of {name}", "filter", key=sorted(unknown)[0], name=name
            )
        values = lists.parse(db.session, listdef, args, _zone())
        lists.page(db.session, listdef, values, listing.EVERYONE, sort=sort,
                   window=listing.Window(1, count=False))  # a bad sort is refused here  # fmt: skip
    except IpamError as exc:
        raise Refusal(cli_message(exc)) from None
    if as_csv:
        rows = lists.stream(db.session, listdef, values, listing.EVERYONE, sort=sort)
        out = sys.stdout.buffer
        for chunk in lists.csv_chunks(listdef, rows, lang, _zone()):
            out.write(chunk)
        out.flush()
        return
    rows, total = lists.page(
        db.session, listdef, values, listing.EVERYONE, sort=sort,
        window=listing.Window(limit, offset),
    )  # fmt: skip
    shown = [lists.shown(listdef, row, lang, _zone()) for row in rows]
    if as_json:
        keys = [c.key for c in listdef.cols]
        click.echo(json.dumps({"total": total, "items": [dict(zip(keys, r, strict=True))
                                                          for r in shown]},
                              ensure_ascii=False, indent=2, default=str))  # fmt: skip
        return
    click.echo("\t".join(c.title(lang) for c in listdef.cols))
    for r in shown:
        click.echo("\t".join(str(v) for v in r))
    click.echo(f"{offset + len(rows)} / {total}")
