"""`ipam abuse`: ingest complaint files and maildirs, list cases and rejected input."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import click
from flask import current_app

from ipam.db import chunk_done

from .. import mail
from ..extensions import db
from .common import actor_option, echo_json, ipam, json_option, lang_option, lazy, transaction

cases = lazy("ipam.abuse.cases")
formats = lazy("ipam.abuse.formats")
incidents = lazy("ipam.abuse.incidents")
ingest = lazy("ipam.abuse.ingest")
notify = lazy("ipam.abuse.notify")

SHOWN = 20  # reports listed per input; the totals count all


def _inputs(paths):
    """(name, bytes or a file path) of every input given, and of every message in a maildir."""
    for path in map(Path, paths):
        if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
            box = mailbox.Maildir(str(path), factory=None, create=False)
            for key in sorted(box.keys()):
                yield f"{path}/{key}", box.get_bytes(key)
        elif path.is_dir():
            for item in sorted(p for p in path.iterdir() if p.is_file()):
                yield str(item), item
        else:
            yield str(path), path


def _ingest_one(s, raw, kind, actor):
    """A file of CSV is streamed (flat memory, committed in chunks); anything else read whole."""
    name = ""
    if isinstance(raw, Path):
        name = raw.name
        with raw.open("rb") as fh:
            head = fh.read(4096)
            if (kind or formats.detect(head)) == "csv" and not formats.is_shadowserver(head):
                fh.seek(0)
                return ingest.ingest_stream(
                    s, fh, actor=actor, policy=current_app.config["IPAM_ABUSE_POLICY"],
                    chunk_done=chunk_done(s),
                )  # fmt: skip
        raw = raw.read_bytes()
    return ingest.ingest(
        s, raw, actor=actor, kind=kind, policy=current_app.config["IPAM_ABUSE_POLICY"],
        name=name,
    )  # fmt: skip


@ipam.group("abuse")
def abuse_group():
    """Abuse complaints (clauses 7-14): ingest, cases, rejected input."""


@abuse_group.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--format",
    "kind",
    type=click.Choice(ingest.KINDS),
    help="default: detected",
)
@actor_option
def abuse_ingest(paths, kind, actor):
    """Read ARF / X-ARF mails, XARF JSON, CSV batches, DROP feeds, or maildirs of mails."""
    totals = {"reports": 0, "duplicates": 0, "rejected": 0, "cases": 0}
    for name, raw in _inputs(paths):
        with transaction() as s:
            result = _ingest_one(s, raw, kind, actor)
        totals["reports"] += result.stored
        totals["duplicates"] += result.duplicates
        totals["rejected"] += result.rejected_count
        totals["cases"] += result.cases_opened
        for r in result.reports[:SHOWN]:
            click.echo(
                f"{name}: report {r.id} {r.category.value} {r.prefix} at "
                f"{r.event_at:%Y-%m-%d %H:%M}Z ({r.holding})"
            )
        for r in result.rejected[:SHOWN]:
            click.echo(f"{name}: rejected {r.id}: {r.field or '-'}: {r.reason}", err=True)
        if result.stored > SHOWN:
            click.echo(f"{name}: … and {result.stored - SHOWN} more report(s)")
    click.echo(
        f"{totals['reports']} report(s), {totals['cases']} new case(s), "
        f"{totals['duplicates']} duplicate(s), {totals['rejected']} rejected"
    )


@abuse_group.command("cases")
@json_option
@click.option("--state", default=None, help="open, notified, acknowledged, resolved, escalated")
def abuse_cases(state, as_json):
    """List abuse cases, oldest first."""
    rows, _total = cases.list_cases(db.session, state=state)
    if as_json:
        return echo_json(rows, "abuse:CaseOut")
    for c in reversed(rows):
        sub = f" / {c.sublessee.name}" if c.sublessee else ""
        click.echo(
            f"{c.id:5} {c.state:12} {c.category.value:18} {c.prefix:20} "
            f"x{c.report_count:<4} {c.customer.name}{sub}"
        )


@abuse_group.command("unattributed")
@json_option
@click.option("--holding", type=click.Choice(["unallocated", "quarantined"]))
def abuse_unattributed(holding, as_json):
    """List reports on space nobody held at the time (they opened no case)."""
    rows, total = ingest.list_unattributed(db.session, holding=holding)
    if as_json:
        return echo_json(rows, "abuse:ReportOut")
    for r in reversed(rows):
        click.echo(
            f"{r.id:5} {r.event_at:%Y-%m-%d %H:%M} {r.prefix:20} {r.category.value:12} "
            f"{r.holding.value:12} {r.reporter}"
        )
    click.echo(f"{total} unattributed report(s)")
    names, count = ingest.list_rejected(db.session, field="domain")
    for r in reversed(names):
        click.echo(f"{r.id:5} {r.received_at:%Y-%m-%d %H:%M} name: {r.reason}")
    if count:
        click.echo(f"{count} complaint(s) naming a URL or domain nobody registered "
                   "(ipam abuse retry ID once the site is registered)")  # fmt: skip


@abuse_group.command("rejected")
@json_option
def abuse_rejected(as_json):
    """List input the intake could not read."""
    rows, _total = ingest.list_rejected(db.session)
    if as_json:
        return echo_json(rows, "abuse:RejectedOut")
    for r in reversed(rows):
        click.echo(
            f"{r.id:5} {r.source:10} {r.received_at:%Y-%m-%d %H:%M} {r.field or '-'}: {r.reason}"
        )


@abuse_group.command("retry")
@click.argument("rejected_id", type=int)
@click.option("--format", "kind", default=None)
@actor_option
def abuse_retry(rejected_id, kind, actor):
    """Run a rejected input again (e.g. with the right --format)."""
    with transaction() as s:
        result = ingest.retry_rejected(
            s,
            rejected_id,
            actor=actor,
            kind=kind,
            policy=current_app.config["IPAM_ABUSE_POLICY"],
        )
    click.echo(f"{result.stored} report(s), {result.rejected_count} rejected again")


@abuse_group.command("case")
@click.argument("case_id", type=int)
@click.argument("action", type=click.Choice(sorted(cases.TRANSITIONS)))
@click.option("--comment", default="", help="required to resolve or escalate")
@actor_option
def abuse_case(case_id, action, comment, actor):
    """Move a case: notify (without mail), acknowledge, resolve, escalate."""
    with transaction() as s:
        case = cases.transition(s, case_id, action, actor=actor, comment=comment)
    click.echo(f"case {case.id} is {case.state}")


@abuse_group.command("notify")
@click.argument("case_id", type=int)
@click.option("--with-sublessee", is_flag=True, help="copy the sublessee")
@actor_option
def abuse_notify(case_id, with_sublessee, actor):
    """Mail the case to the holder's abuse contact (IPAM_SMTP_HOST), then mark it notified."""
    with transaction() as s:
        case = notify.notify(
            s,
            case_id,
            actor=actor,
            sender=mail.sender(),
            send=mail.send,
            with_sublessee=with_sublessee,
        )
    click.echo(f"case {case.id} is {case.state}")


@abuse_group.command("sanction")
@click.argument("what", type=click.Choice(["propose", "confirm"]))
@click.argument("ref", type=int)
@click.option("--reason", default="", help="why (to propose)")
@actor_option
def abuse_sanction(what, ref, reason, actor):
    """propose CASE --reason R: the next rung of the ladder; confirm SANCTION: apply it."""
    with transaction() as s:
        if what == "propose":
            sanction = cases.propose_sanction(
                s, ref, reason, actor=actor, rungs=current_app.config["IPAM_SANCTION_LADDER"]
            )
        else:
            sanction = cases.confirm_sanction(s, ref, actor=actor)
    click.echo(f"sanction {sanction.id}: {sanction.kind.value} {sanction.status}")


@abuse_group.command("poll")
@click.argument("maildir", required=False)
@actor_option
def abuse_poll(maildir, actor):
    """Ingest the new mails of a maildir (default IPAM_ABUSE_MAILDIR) and file them as seen."""
    path = maildir or current_app.config.get("IPAM_ABUSE_MAILDIR")
    if not path:
        raise click.ClickException("maildir: give one, or set IPAM_ABUSE_MAILDIR")
    with transaction() as s:
        result = ingest.poll_maildir(
            s, path, actor=actor, policy=current_app.config["IPAM_ABUSE_POLICY"],
            chunk_done=chunk_done(s),
        )  # fmt: skip
    click.echo(
        f"{result.stored} report(s), {result.cases_opened} new case(s), "
        f"{result.duplicates} duplicate(s), {result.rejected_count} rejected"
    )


@abuse_group.command("remind")
@actor_option
def abuse_remind(actor):
    """What the scheduler does every minute: reminders due, overdue cases up the ladder."""
    config = current_app.config
    with transaction() as s:
        sent = notify.remind_cases(s, send=mail.send, sender=mail.sender(), actor=actor)
        raised = notify.escalate_overdue(s, actor=actor, rungs=config["IPAM_SANCTION_LADDER"])
        staff = [x for x in str(config.get("IPAM_INCIDENT_NOTIFY") or "").split(",") if x]
        reminded = (
            incidents.remind(s, send=mail.send, sender=mail.sender(), to=staff, actor=actor)
            if staff
            else []
        )
    click.echo(
        f"{len(sent)} case reminder(s), {len(raised)} sanction(s) proposed, "
        f"{len(reminded)} incident reminder(s)"
    )


@ipam.group("incident")
def incident_group():
    """Major security incidents (clause 16): declare, log, freeze evidence, report, export."""


@incident_group.command("declare")
@click.option("--title", required=True)
@click.option("--category", required=True, help="an abuse category, e.g. malware")
@click.option("--hours", default=24, show_default=True, help="report within (2-24)")
@click.option("--case", "case_id", default=None, help="declare from this case")
@click.option("--description", default="")
@actor_option
def incident_declare(title, category, hours, case_id, description, actor):
    """Declare a major security incident; its reporting clock starts."""
    with transaction() as s:
        inc = incidents.declare(
            s, title=title, category=category, hours=hours, case=case_id,
            description=description, actor=actor,
        )  # fmt: skip
        frozen = len(incidents.incident_record(s, inc)[1])
    click.echo(
        f"incident {inc.id} declared: report due {inc.deadline:%Y-%m-%d %H:%M} UTC; "
        f"{frozen} record(s) frozen"
    )


@incident_group.command("list")
@json_option
@click.option("--state", default=None)
def incident_list(state, as_json):
    """List incidents with their deadlines."""
    rows = incidents.list_incidents(db.session, state)[0]
    if as_json:
        return echo_json(rows, "abuse:IncidentOut")
    for i in rows:
        click.echo(
            f"{i.id:5} {i.state:9} due {i.deadline:%Y-%m-%d %H:%M}Z {i.category.value:14} {i.title}"
        )


@incident_group.command("log")
@click.argument("incident_id", type=int)
@click.argument("kind", type=click.Choice(incidents.ACTION_KINDS))
@click.argument("text")
@actor_option
def incident_log(incident_id, kind, text, actor):
    """Log an emergency measure taken, or a note."""
    with transaction() as s:
        incidents.log_action(s, incident_id, kind, text, actor=actor)
    click.echo(f"incident {incident_id}: {kind} logged")


@incident_group.command("freeze")
@click.argument("incident_id", type=int)
@click.argument("report_ids", type=int, nargs=-1, required=True)
@actor_option
def incident_freeze(incident_id, report_ids, actor):
    """Freeze reports (their original bytes) as the incident's evidence."""
    with transaction() as s:
        added = incidents.freeze(s, incident_id, report_ids, actor=actor)
    click.echo(f"incident {incident_id}: {len(added)} record(s) frozen")


@incident_group.command("reported")
@click.argument("incident_id", type=int)
@click.option("--to", "reported_to", required=True, help="which authorities")
@click.option("--text", required=True, help="what was reported, and how")
@actor_option
def incident_reported(incident_id, reported_to, text, actor):
    """Record that the incident was reported to the authorities."""
    with transaction() as s:
        inc = incidents.mark_reported(
            s, incident_id, reported_to=reported_to, text=text, actor=actor
        )
    late = inc.reported_at > inc.deadline
    click.echo(f"incident {inc.id} reported" + (" (after the deadline)" if late else ""))


@incident_group.command("close")
@click.argument("incident_id", type=int)
@click.option("--text", required=True)
@actor_option
def incident_close(incident_id, text, actor):
    """Close a reported incident."""
    with transaction() as s:
        incidents.close(s, incident_id, text, actor=actor)
    click.echo(f"incident {incident_id} closed")


@incident_group.command("export")
@click.argument("incident_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--reveal", is_flag=True, help="holders' ID numbers and phones in full (audited)")
@click.option("--reason", help="why personal data is revealed (with --reveal)")
@lang_option
@actor_option
def incident_export(incident_id, fmt, reveal, reason, lang, actor):
    """The incident report: text, or JSON with the evidence bytes (personal data masked)."""
    with transaction() as s:
        reveal_reason = (reason or "") if reveal else None
        data = incidents.export(s, incident_id, reveal=reveal_reason, actor=actor)
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        zone = current_app.config["IPAM_TIMEZONE"]
        from ..messages import catalogue

        click.echo(incidents.export_text(data, lang, zone, catalogue(lang)), nl=False)
