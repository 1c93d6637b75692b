"""Plain JSON shapes of the ledger's objects, shared by the API and the UI's permalinks.

Personal data (ID numbers, phones) is masked here (invariant 9); revealing it
is a separate, audited call.
"""

from __future__ import annotations

from ipam.audit import jsonable
from ipam.validation import mask


def pool(p, util=None) -> dict:
    out = {
        "id": p.id,
        "name": p.name,
        "prefix": p.prefix,
        "family": p.family,
        "parent_id": p.parent_id,
        "description": p.description,
    }
    if util is not None:
        out["utilization"] = {
            "size": util.size,
            "allocated": util.allocated,
            "quarantined": util.quarantined,
            "child_pools": util.child_pools,
            "free": util.free,
            "used_ratio": round(util.used_ratio, 6),
        }
    return jsonable(out)


def _people(items) -> list[dict]:
    out = []
    for person in items or []:
        person = dict(person)
        for key in ("phone", "id_number"):
            if person.get(key):
                person[key] = mask(person[key])
        out.append(person)
    return out


def customer(c) -> dict:
    return jsonable(
        {
            "id": c.id,
            "name": c.name,
            "uscc": c.uscc,
            "kind": c.kind,
            "status": c.status,
            "isp_licence_number": c.isp_licence_number,
            "isp_licence_scope": c.isp_licence_scope,
            "isp_licence_expires": c.isp_licence_expires,
            "icp_number": c.icp_number,
            "connected_on": c.connected_on,
            "psb_filing_number": c.psb_filing_number,
            "psb_filed_on": c.psb_filed_on,
            "responsible_persons": _people(c.responsible_persons),
            "contacts": _people(c.contacts),
            "domains": c.domains or [],
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "exited_at": c.exited_at,
        }
    )


def _interval(item) -> dict:
    return {
        "valid_from": item.valid_from,
        "valid_to": item.valid_to,
        "end_reason": item.end_reason,
        "end_note": item.end_note,
    }


def allocation(a) -> dict:
    return jsonable(
        {
            "id": a.id,
            "prefix": a.prefix,
            "pool_id": a.pool_id,
            "customer_id": a.customer_id,
            "purpose": a.purpose,
            **_interval(a),
        }
    )


def sublessee(s) -> dict:
    return jsonable(
        {
            "id": s.id,
            "customer_id": s.customer_id,
            "kind": s.kind,
            "name": s.name,
            "id_type": s.id_type,
            "id_number": mask(s.id_number, 4, 4),
            "contact_person": s.contact_person,
            "phone": mask(s.phone),
            "email": s.email,
            "address": s.address,
            "purpose": s.purpose,
            "domains": s.domains,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
        }
    )


def sublease(s) -> dict:
    return jsonable(
        {
            "id": s.id,
            "prefix": s.prefix,
            "allocation_id": s.allocation_id,
            "sublessee_id": s.sublessee_id,
            **_interval(s),
        }
    )


def change_request(r) -> dict:
    return jsonable(
        {
            "id": r.id,
            "customer_id": r.customer_id,
            "target": r.target,
            "target_id": r.target_id,
            "changes": r.changes,
            "reason": r.reason,
            "status": r.status,
            "submitted_by": r.submitted_by,
            "submitted_at": r.submitted_at,
            "decided_by": r.decided_by,
            "decided_at": r.decided_at,
            "comment": r.comment,
        }
    )


def quarantine(q) -> dict:
    return jsonable(
        {
            "id": q.id,
            "prefix": q.prefix,
            "pool_id": q.pool_id,
            "allocation_id": q.allocation_id,
            "since": q.since,
            "until": q.until,
            "reason": q.reason,
            "released_at": q.released_at,
        }
    )


def user(u) -> dict:
    return jsonable(
        {
            "id": u.id,
            "username": u.username,
            "role": u.role,
            "customer_id": u.customer_id,
            "active": u.active,
        }
    )


def token(t) -> dict:
    return jsonable(
        {"id": t.id, "name": t.name, "created_at": t.created_at, "revoked_at": t.revoked_at}
    )


def probe_schedule(s) -> dict:
    return jsonable(
        {
            "id": s.id,
            "name": s.name,
            "pool_id": s.pool_id,
            "customer_id": s.customer_id,
            "cron": s.cron,
            "methods": s.methods,
            "tcp_ports": s.tcp_ports,
            "dark_after": s.dark_after,
            "enabled": s.enabled,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
        }
    )


def probe_run(r) -> dict:
    return jsonable(
        {
            "id": r.id,
            "schedule_id": r.schedule_id,
            "trigger": r.trigger,
            "status": r.status,
            "requested_by": r.requested_by,
            "queued_at": r.queued_at,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "targets": r.targets,
            "answered": r.answered,
            "findings_raised": r.findings_raised,
            "error": r.error,
        }
    )


def observation(o) -> dict:
    from netaddr import IPAddress

    from ipam.addresses import from_bytes

    return jsonable(
        {
            "address": str(IPAddress(from_bytes(o.address), o.family)),
            "method": o.method,
            "answered": o.answered,
            "rtt_ms": o.rtt_ms,
            "detail": o.detail,
            "observed_at": o.observed_at,
        }
    )


def finding(f) -> dict:
    return jsonable(
        {
            "id": f.id,
            "kind": f.kind.value,
            "prefix": f.prefix,
            "status": f.status,
            "summary": f.summary,
            "customer_id": f.customer_id,
            "sublessee_id": f.sublessee_id,
            "allocation_id": f.allocation_id,
            "pool_id": f.pool_id,
            "schedule_id": f.schedule_id,
            "first_seen": f.first_seen,
            "last_seen": f.last_seen,
            "count": f.count,
            "evidence": f.evidence,
            "resolved_at": f.resolved_at,
            "resolved_by": f.resolved_by,
            "resolution": f.resolution,
        }
    )


def abuse_case(c) -> dict:
    return jsonable(
        {
            "id": c.id,
            "state": c.state,
            "customer_status": c.customer_status,
            "category": c.category.value,
            "prefix": c.prefix,
            "customer_id": c.customer_id,
            "sublessee_id": c.sublessee_id,
            "report_count": c.report_count,
            "first_event_at": c.first_event_at,
            "last_event_at": c.last_event_at,
            "deadline": c.deadline,
        }
    )


def abuse_case_detail(c, reports, events, sanctions) -> dict:
    return {
        **abuse_case(c),
        "reports": [abuse_report(r) for r in reports],
        "events": [
            jsonable(
                {
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "from": e.from_state,
                    "to": e.to_state,
                    "comment": e.comment,
                }
            )
            for e in events
        ],
        "sanctions": [sanction(x) for x in sanctions],
    }


def abuse_report(r) -> dict:
    return jsonable(
        {
            "id": r.id,
            "source": r.source,
            "prefix": r.prefix,
            "event_at": r.event_at,
            "received_at": r.received_at,
            "category": r.category.value,
            "reporter": r.reporter,
            "description": r.description,
            "holding": r.holding,
            "sha256": r.sha256,
        }
    )


def sanction(x) -> dict:
    return jsonable(
        {
            "id": x.id,
            "customer_id": x.customer_id,
            "case_id": x.case_id,
            "kind": x.kind.value,
            "status": x.status,
            "reason": x.reason,
            "evidence": x.evidence,
            "proposed_by": x.proposed_by,
            "proposed_at": x.proposed_at,
            "confirmed_by": x.confirmed_by,
            "confirmed_at": x.confirmed_at,
        }
    )


def rejected_report(r) -> dict:
    return jsonable(
        {
            "id": r.id,
            "source": r.source,
            "field": r.field,
            "reason": r.reason,
            "received_at": r.received_at,
            "status": r.status,
            "report_id": r.report_id,
            "sha256": r.sha256,
            "bytes": len(r.raw),
        }
    )


def incident(i) -> dict:
    return jsonable(
        {
            "id": i.id,
            "title": i.title,
            "category": i.category.value,
            "state": i.state,
            "case_id": i.case_id,
            "customer_id": i.customer_id,
            "declared_at": i.declared_at,
            "declared_by": i.declared_by,
            "deadline": i.deadline,
            "reported_at": i.reported_at,
            "reported_to": i.reported_to,
            "closed_at": i.closed_at,
            "reminders_sent": i.reminders_sent,
        }
    )
