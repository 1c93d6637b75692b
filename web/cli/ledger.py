"""Ledger commands: pools, customers, allocations, leasing, exit and reclamation, whois."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from flask import current_app

from ipam import (
    allocation,
    audit,
    bulk,
    customers,
    importing,
    leasing,
    pools,
    reclamation,
)
from ipam.db import chunk_done
from ipam.db import transaction as db_transaction
from ipam.errors import IpamError

from ..extensions import db
from .common import (
    Refusal,
    _days,
    _pairs,
    _person,
    actor_option,
    cli_message,
    display_zone,
    echo_json,
    ipam,
    json_option,
    set_option,
    transaction,
)


# pools -------------------------------------------------------------
@ipam.group("pool")
def pool_group():
    """Pools of the provider's own address space."""


@pool_group.command("add")
@click.argument("prefix")
@click.argument("name")
@click.option("--parent", help="parent pool (name, id or prefix); found automatically")
@click.option("--description", default="")
@actor_option
def pool_add(prefix, name, parent, description, actor):
    """Add a pool PREFIX called NAME."""
    with transaction() as s:
        pool = pools.add_pool(s, prefix, name, parent=parent, description=description, actor=actor)
        click.echo(f"pool {pool.id} {pool.prefix} {pool.name}")


@pool_group.command("list")
@json_option
def pool_list(as_json):
    """List pools with their utilization."""
    with transaction() as s:
        if as_json:
            from web.schemas.ledger import PoolOut

            rows = [
                {**PoolOut.model_validate(p).model_dump(), "utilization": pools.utilization(s, p)}
                for p in pools.list_pools(s)[0]
            ]
            return echo_json(rows, "ledger:PoolOut")
        for pool in pools.list_pools(s)[0]:
            u = pools.utilization(s, pool)
            depth = 0
            parent = pool.parent
            while parent is not None:
                depth += 1
                parent = parent.parent
            parts = [f"allocated {u.allocated}", f"quarantined {u.quarantined}"]
            if u.child_pools:
                parts.append(f"in child pools {u.child_pools}")
            parts.append(f"free {u.free}")
            click.echo(
                f"{'  ' * depth}{pool.prefix:<24} {pool.name:<28} "
                f"{u.used_ratio:6.1%} used  " + "  ".join(parts)
            )


# customers ---------------------------------------------------------
@ipam.group("customer")
def customer_group():
    """Customers (Party A)."""


@customer_group.command("add")
@click.option("--name", required=True)
@click.option("--uscc", required=True, help="unified social credit code")
@click.option("--kind", required=True, type=click.Choice(["isp", "hosting", "enterprise"]))
@click.option("--isp-licence-number")
@click.option("--isp-licence-scope")
@click.option("--isp-licence-expires", help="YYYY-MM-DD")
@click.option("--icp-number")
@click.option("--connected-on", help="YYYY-MM-DD")
@click.option("--psb-filing-number")
@click.option("--psb-filed-on", help="YYYY-MM-DD")
@click.option(
    "--contact", "contact_list", multiple=True, help="NAME,PHONE,EMAIL[,ROLE] (repeatable)"
)
@click.option(
    "--domain", "domains", multiple=True, help="a domain the customer registered (repeatable)"
)
@actor_option
def customer_add(contact_list, domains, actor, **fields):
    """Register a customer."""
    data = {k: v for k, v in fields.items() if v is not None}
    data["contacts"] = [_person(c) for c in contact_list]
    if domains:
        data["domains"] = list(domains)
    with transaction() as s:
        c = customers.add_customer(s, data, actor=actor)
        click.echo(f"customer {c.id} {c.name} {c.uscc}")


@customer_group.command("update")
@click.argument("customer")
@set_option("icp_number=京ICP备1号")
@click.option(
    "--contact",
    "contact_list",
    multiple=True,
    help="replace the contacts: NAME,PHONE,EMAIL[,ROLE] (repeatable)",
)
@actor_option
def customer_update(customer, pairs, contact_list, actor):
    """Change a customer's registration data; the old version stays answerable."""
    changes = _pairs(pairs)
    if contact_list:
        changes["contacts"] = [_person(c) for c in contact_list]
    with transaction() as s:
        c = customers.update_customer(s, customer, changes, actor=actor)
        click.echo(f"customer {c.id} {c.name} updated")


@customer_group.command("list")
@json_option
def customer_list(as_json):
    """List customers."""
    with transaction() as s:
        rows = customers.list_customers(s)[0]
        if as_json:
            return echo_json(rows, "ledger:CustomerOut")
        for c in rows:
            click.echo(f"{c.id:>4} {c.uscc} {c.status.value:<9} {c.kind.value:<10} {c.name}")


# allocations -------------------------------------------------------
@ipam.command("allocate")
@click.argument("pool")
@click.argument("customer")
@click.option("--prefix", help="a specific address or prefix")
@click.option("--length", "prefixlen", type=int, help="next free prefix of this length")
@click.option("--purpose", default="")
@actor_option
def allocate_cmd(pool, customer, prefix, prefixlen, purpose, actor):
    """Allocate from POOL to CUSTOMER: next free address by default."""
    with transaction() as s:
        a = allocation.allocate(
            s, pool, customer, prefix=prefix, prefixlen=prefixlen, purpose=purpose, actor=actor
        )
        click.echo(f"allocation {a.id} {a.prefix} -> {a.customer.name}")


@ipam.command("end")
@click.argument("allocation_ref", metavar="ALLOCATION")
@click.option("--note")
@click.option("--quarantine-days", type=int)
@actor_option
def end_cmd(allocation_ref, note, quarantine_days, actor):
    """End an allocation (by id or prefix); its block goes to quarantine."""
    with transaction() as s:
        a = allocation.end_allocation(
            s, allocation_ref, actor=actor, note=note, quarantine_days=_days(quarantine_days)
        )
        click.echo(f"allocation {a.id} {a.prefix} ended")


# sublessees and subleases -----------------------------------------
@ipam.group("sublessee")
def sublessee_group():
    """Third parties a customer passes addresses to (clause 19)."""


@sublessee_group.command("add")
@click.argument("customer")
@click.option("--kind", required=True, type=click.Choice(["person", "organisation"]))
@click.option("--name", required=True)
@click.option(
    "--id-type", required=True, type=click.Choice(["resident_id", "uscc", "passport", "other"])
)
@click.option("--id-number", required=True)
@click.option("--contact-person", required=True)
@click.option("--phone", required=True)
@click.option("--email", required=True)
@click.option("--address", required=True)
@click.option("--purpose", required=True)
@click.option("--domain", "domains", multiple=True)
@actor_option
def sublessee_add(customer, actor, domains, **fields):
    """Register a sublessee of CUSTOMER."""
    with transaction() as s:
        sub = leasing.register_sublessee(
            s, customer, {**fields, "domains": list(domains)}, actor=actor
        )
        click.echo(f"sublessee {sub.id} {sub.name}")


@sublessee_group.command("update")
@click.argument("sublessee")
@set_option("phone=13900139000")
@actor_option
def sublessee_update(sublessee, pairs, actor):
    """Change a sublessee's details; the old version stays answerable."""
    with transaction() as s:
        sub = leasing.update_sublessee(s, sublessee, _pairs(pairs), actor=actor)
        click.echo(f"sublessee {sub.id} {sub.name} updated")


@ipam.command("sublease")
@click.argument("allocation_ref", metavar="ALLOCATION")
@click.argument("sublessee")
@click.option("--prefix", help="specific addresses inside the allocation")
@click.option("--length", "prefixlen", type=int, help="next free part of this length")
@actor_option
def sublease_cmd(allocation_ref, sublessee, prefix, prefixlen, actor):
    """Sub-lease part of ALLOCATION (id or prefix) to SUBLESSEE."""
    with transaction() as s:
        lease = leasing.sublease(
            s, allocation_ref, sublessee, prefix=prefix, prefixlen=prefixlen, actor=actor
        )
        click.echo(f"sublease {lease.id} {lease.prefix} -> {lease.sublessee.name}")


@ipam.command("end-sublease")
@click.argument("sublease_id", type=int)
@click.option("--note")
@actor_option
def end_sublease_cmd(sublease_id, note, actor):
    """End a sublease by id."""
    with transaction() as s:
        lease = leasing.end_sublease(s, sublease_id, note=note, actor=actor)
        click.echo(f"sublease {lease.id} {lease.prefix} ended")


# exit, reclaim, quarantine ----------------------------------------
@ipam.command("exit")
@click.argument("customer")
@click.option("--quarantine-days", type=int)
@click.option("--note", default="customer exited")
@actor_option
def exit_cmd(customer, quarantine_days, note, actor):
    """Customer exit: end every allocation and sublease, addresses to quarantine."""
    with transaction() as s:
        ended = reclamation.customer_exit(
            s, customer, actor=actor, note=note, quarantine_days=_days(quarantine_days)
        )
        click.echo(
            f"exited; {len(ended)} allocation(s) ended: " + ", ".join(a.prefix for a in ended)
        )


@ipam.command("reclaim")
@click.argument("customer")
@click.option("--reason", required=True, help="the violation, recorded with the sanction")
@click.option("--allocation", "allocs", multiple=True, help="only these (id or prefix)")
@click.option("--quarantine-days", type=int)
@actor_option
def reclaim_cmd(customer, reason, allocs, quarantine_days, actor):
    """Reclaim a customer's addresses for a violation."""
    with transaction() as s:
        ended = reclamation.reclaim(
            s,
            customer,
            reason=reason,
            actor=actor,
            allocations=list(allocs) or None,
            quarantine_days=_days(quarantine_days),
        )
        click.echo(f"reclaimed {len(ended)} allocation(s): " + ", ".join(a.prefix for a in ended))


@ipam.group("quarantine")
def quarantine_group():
    """Addresses cooling down after reclamation."""


@quarantine_group.command("list")
@json_option
def quarantine_list(as_json):
    """List blocks in quarantine and when they come free."""
    with transaction() as s:
        rows = reclamation.quarantined(s)
        if as_json:
            return echo_json(rows, "ledger:QuarantineOut")
        for q in rows:
            until = q.until.astimezone(display_zone()).isoformat()
            click.echo(f"{q.id:>4} {q.prefix:<24} until {until}  {q.reason}")


@quarantine_group.command("release")
@click.option("--id", "quarantine_id", type=int, help="release this block now")
@click.option("--reason", help="required to release before the cool-down ends")
@actor_option
def quarantine_release(quarantine_id, reason, actor):
    """Release expired quarantine (or one block by id)."""
    with transaction() as s:
        done = reclamation.release_quarantine(
            s, actor=actor, quarantine_id=quarantine_id, early_reason=reason
        )
        click.echo(f"released {len(done)} block(s)")


# attribution -------------------------------------------------------
# audit -------------------------------------------------------------
@ipam.group("audit")
def audit_group():
    """The tamper-evident audit log."""


@audit_group.command("verify")
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="an issued report or certificate: the log must still hold the head it carries",
)
def audit_verify(anchor_file):
    """Check the audit log's hash chain and its latest checkpoint; exit 1 if broken."""
    checkpoints = audit.checkpoints_from(current_app.config)
    with transaction() as s:
        result = audit.verify(s, checkpoints=checkpoints)
        if anchor_file is not None and result.ok:
            from ipam.reports.anchors import anchor_of

            seq, digest, where = anchor_of(anchor_file.read_bytes(), s)
            problem = audit.anchor_problem(s, seq, digest)
            if problem:
                click.echo(f"audit log BROKEN against {anchor_file}: {problem}", err=True)
                sys.exit(1)
            click.echo(f"anchor of {anchor_file} ({where}): entry {seq} {digest} is in the log")
    if result.ok:
        point = checkpoints.latest()
        since = f"; agrees with the checkpoint of {point.at}" if point else "; no checkpoint yet"
        click.echo(f"audit log intact: {result.checked} entries{since}")
    else:
        click.echo(
            f"audit log BROKEN at entry {result.seq}: {result.problem} "
            f"({result.checked} entries verified before it)",
            err=True,
        )
        sys.exit(1)


@audit_group.command("checkpoint")
def audit_checkpoint():
    """Append the chain's head, signed, to the checkpoint file (also a scheduled job)."""
    with transaction() as s:
        point = audit.checkpoints_from(current_app.config).write(s)
    click.echo(f"checkpoint: {point.seq} entries, head {point.hash}")


# import and demo ---------------------------------------------------
class _NothingImported(Exception):
    """Bad rows without --skip-errors: the import's transaction is rolled back whole."""


@ipam.command("import")
@click.argument("kind", type=click.Choice(["pools", "customers", "allocations"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-errors", is_flag=True, help="commit the good rows even when some rows fail")
@actor_option
def import_cmd(kind, path, skip_errors, actor):
    """Import pools, customers or allocations from a CSV file."""
    if kind == "allocations":
        return _import_allocations(path, skip_errors, actor)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        total = max(sum(1 for _ in fh) - 1, 0)
    try:
        with (
            db_transaction(db.session),
            path.open(newline="", encoding="utf-8-sig") as fh,
            click.progressbar(length=total, label=f"importing {kind}", file=sys.stderr) as bar,
        ):
            report = importing.import_csv(db.session, kind, fh, actor=actor, progress=bar.update)
            for err in report.errors:
                click.echo(f"row {err.row}: {err.field}: {err.message}", err=True)
            if report.errors and not skip_errors:
                raise _NothingImported(len(report.errors))
    except _NothingImported as refused:
        click.echo(
            f"{refused.args[0]} row(s) failed; nothing imported "
            "(use --skip-errors to import the good rows)",
            err=True,
        )
        sys.exit(1)
    click.echo(f"imported {report.imported} {kind}; {len(report.errors)} row(s) failed")
    if report.errors:
        sys.exit(1)


def _import_allocations(path: Path, skip_errors: bool, actor: str) -> None:
    """Checked whole first, then written in short chunks: live work waits a chunk at most."""
    db.session.rollback()  # the check runs in a read transaction of its own
    started = time.perf_counter()
    try:
        with path.open("rb") as fh:
            lines = max(sum(1 for _ in fh) - 1, 0)
        with (
            path.open("rb") as fh,
            click.progressbar(length=lines, label="importing allocations", file=sys.stderr) as bar,
        ):
            report = bulk.import_allocations(
                db.session,
                fh,
                actor=actor,
                chunk_done=chunk_done(db.session),
                skip_errors=skip_errors,
                file_name=path.name,
                progress=bar.update,
            )
    except IpamError as exc:
        db.session.rollback()
        raise Refusal(cli_message(exc)) from None
    for err in report.errors:
        click.echo(f"row {err.row}: {err.field}: {err.message}", err=True)
    if report.errors and not skip_errors and not report.batch_id:
        click.echo(
            f"{len(report.errors)} row(s) failed; nothing imported "
            "(use --skip-errors to import the good rows)",
            err=True,
        )
        sys.exit(1)
    if report.withdrawn:
        click.echo(f"import {report.batch_id} withdrawn: nothing imported", err=True)
        sys.exit(1)
    seconds = time.perf_counter() - started
    click.echo(
        f"imported {report.imported} allocations (import {report.batch_id}) in {seconds:.1f} s "
        f"({report.imported / max(seconds, 1e-9):.0f} rows/s); {len(report.errors)} row(s) failed"
    )
    if report.errors:
        sys.exit(1)


@ipam.command("import-undo")
@click.argument("batch_id", type=int)
@actor_option
def import_undo_cmd(batch_id, actor):
    """Withdraw an allocations import that did not finish (interrupted), chunk by chunk."""
    try:
        removed = bulk.undo(db.session, batch_id, actor=actor, chunk_done=chunk_done(db.session))
    except IpamError as exc:
        db.session.rollback()
        raise Refusal(cli_message(exc)) from None
    click.echo(f"import {batch_id} withdrawn: {removed} allocation(s) removed")
