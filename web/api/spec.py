"""The OpenAPI 3 description of /api/v1, built from the app's own routes.

Paths and methods come from the URL map, so a route cannot be missing from
the spec; summaries, parameters and bodies come from DOCS below.
"""

from __future__ import annotations

import re

from flask import Flask

ERROR = {"$ref": "#/components/schemas/Error"}
LIST = {"limit": "page size, 1-500 (default 50)", "offset": "items to skip"}


def _body(**props) -> dict:
    required = [k for k, v in props.items() if v.endswith("*")]
    return {
        "type": "object",
        "properties": {k: {"description": v.rstrip("*")} for k, v in props.items()},
        **({"required": required} if required else {}),
    }


DOCS: dict[str, tuple[str, dict, dict | None]] = {
    "api.me": ("The logged-in user", {}, None),
    "api.tokens": ("Your API tokens", {}, None),
    "api.token_issue": (
        "Create an API token (its secret is in this answer only)",
        {},
        _body(name="what the token is for*"),
    ),
    "api.token_revoke": ("Revoke one of your tokens", {}, None),
    "api.users_list": ("Users (admin)", {}, None),
    "api.user_add": (
        "Add a user (admin)",
        {},
        _body(
            username="*",
            password="at least 10 characters*",
            role="admin | engineer | customer | auditor*",
            customer="for customer users",
        ),
    ),
    "api.user_update": (
        "Disable or re-enable a user, or set a password (admin)",
        {},
        _body(active="true | false", password="at least 10 characters"),
    ),
    "api.pools_list": ("Pools", {**LIST, "family": "4 or 6"}, None),
    "api.pool_add": (
        "Add a pool (nested pools find their parent)",
        {},
        _body(prefix="CIDR*", name="*", parent="pool name, id or prefix", description=""),
    ),
    "api.pool": ("A pool with its utilization", {}, None),
    "api.customers_list": (
        "Customers",
        {**LIST, "status": "active | suspended | exited", "q": "part of the name"},
        None,
    ),
    "api.customer_add": (
        "Register a customer",
        {},
        _body(
            name="*",
            uscc="unified social credit code*",
            kind="isp | hosting | enterprise*",
            isp_licence_number="",
            icp_number="",
            connected_on="date",
            psb_filing_number="",
            psb_filed_on="date",
            contacts="list of people",
            responsible_persons="list of people",
        ),
    ),
    "api.customer": ("A customer (personal data masked)", {}, None),
    "api.customer_update": (
        "Change a customer's registration data (engineers)",
        {},
        _body(**{"<field>": "any customer field but uscc and status"}),
    ),
    "api.customer_exit": (
        "The customer exits: every allocation ends, addresses to quarantine",
        {},
        _body(note="", quarantine_days="default 30"),
    ),
    "api.customer_reclaim": (
        "Reclaim allocations for a recorded violation",
        {},
        _body(reason="*", allocations="ids or prefixes; default all", quarantine_days=""),
    ),
    "api.allocations_list": (
        "Allocations",
        {
            **LIST,
            "customer": "customer id, code or name",
            "pool": "pool id, name or prefix",
            "current": "true (default) | false | all",
            "contains": "an address",
        },
        None,
    ),
    "api.allocation_add": (
        "Allocate a specific prefix, or the next free block of a length",
        {},
        _body(
            pool="*",
            customer="*",
            prefix="exact block",
            prefixlen="next free block of this length",
            purpose="",
        ),
    ),
    "api.allocation_get": ("An allocation", {}, None),
    "api.allocation_end": (
        "End an allocation and its subleases",
        {},
        _body(note="", quarantine_days="default 30"),
    ),
    "api.sublessees_list": ("Sublessees", {**LIST, "customer": "customer"}, None),
    "api.sublessee_add": (
        "Register a sublessee (clause 19)",
        {},
        _body(
            customer="staff only: whose sublessee",
            kind="person | organisation*",
            name="*",
            id_type="resident_id | uscc | passport | other*",
            id_number="*",
            contact_person="*",
            phone="*",
            email="*",
            address="*",
            purpose="*",
            domains="list",
        ),
    ),
    "api.sublessee": ("A sublessee (personal data masked)", {}, None),
    "api.sublessee_update": (
        "Change a sublessee's details",
        {},
        _body(**{"<field>": "any sublessee field"}),
    ),
    "api.subleases_list": (
        "Subleases",
        {**LIST, "customer": "", "sublessee": "", "current": "true (default) | false | all"},
        None,
    ),
    "api.sublease_add": (
        "Sublease part of an allocation",
        {},
        _body(allocation="*", sublessee="*", prefix="exact block", prefixlen="next free part"),
    ),
    "api.sublease_end": ("End a sublease", {}, _body(note="")),
    "api.change_requests_list": (
        "Change requests (clause 18)",
        {**LIST, "status": "pending | approved | rejected", "customer": ""},
        None,
    ),
    "api.change_request_add": (
        "Submit a change request (customer users)",
        {},
        _body(
            target="customer | allocation*",
            target_id="allocation id (target allocation)",
            changes="object of field: new value*",
            reason="*",
        ),
    ),
    "api.change_request": ("A change request", {}, None),
    "api.change_request_approve": ("Approve and apply a change request", {}, _body(comment="")),
    "api.change_request_reject": ("Reject a change request", {}, _body(comment="*")),
    "api.quarantine_list": ("Blocks in quarantine", {}, None),
    "api.quarantine_release": (
        "Release a quarantined block (early: give a reason)",
        {},
        _body(reason="required before the cool-down ends"),
    ),
    "api.attribution_get": (
        "Who held an address at an instant",
        {
            "address": "IPv4 or IPv6 address (required)",
            "at": "ISO 8601 instant with zone; default now",
            "reveal": "true to show personal data in full (audited; not for customers)",
            "reason": "why, when revealing",
        },
        None,
    ),
    "api.address_map": (
        "Address map of a prefix: per cell counts by state",
        {"prefix": "CIDR (required)"},
        None,
    ),
    "api.probe_schedules_list": ("Probe schedules (clause 19)", LIST, None),
    "api.probe_schedule_add": (
        "Add a probe schedule for a pool or a customer",
        {},
        _body(
            name="*",
            pool="pool id, name or prefix (or customer)",
            customer="customer id or name (or pool)",
            cron="five fields, or six with seconds first*",
            methods="list of icmp, tcp, dns, blocklist (default icmp, dns, blocklist)",
            tcp_ports="list of ports (for tcp)",
            dark_after="silent runs before a held block is reported dark (default 3)",
        ),
    ),
    "api.probe_schedule": ("A probe schedule", {}, None),
    "api.probe_schedule_update": (
        "Change a probe schedule (cron, methods, ports, dark_after, enabled, name)",
        {},
        _body(**{"<field>": "any schedule field", "enabled": "true | false"}),
    ),
    "api.probe_schedule_run": ("Run now: queue a run for the scheduler", {}, None),
    "api.probe_runs_list": (
        "Probe runs, newest first",
        {**LIST, "schedule": "schedule id or name", "status": "queued | running | done | failed"},
        None,
    ),
    "api.probe_run": (
        "A probe run with the observations kept",
        {"limit": "observations, 1-5000 (default 500)"},
        None,
    ),
    "api.findings_list": (
        "Probe findings, latest first",
        {
            **LIST,
            "status": "open (default) | resolved | all",
            "kind": "unallocated_in_use | quarantined_in_use | reclaimed_in_use | "
            "allocated_dark | ptr_unregistered | ptr_mismatch | blocklisted",
            "customer": "customer id or name",
            "pool": "pool id, name or prefix",
        },
        None,
    ),
    "api.finding": ("A finding with its evidence", {}, None),
    "api.finding_resolve": ("Resolve a finding", {}, _body(comment="what was done*")),
    "api.abuse_report_add": (
        "Ingest a complaint: message/rfc822 (ARF, X-ARF), application/json (XARF v4, or our own"
        " object below), text/csv",
        {},
        _body(
            address="address or prefix (our own JSON object)",
            time="the event's time, ISO 8601 with its zone",
            category="illegal_content | state_secrets | public_order | attack | spam |"
            " infringement | malware | unapproved_content | other",
            description="",
            reporter="",
        ),
    ),
    "api.abuse_cases_list": ("Abuse cases (customers: their own)", {**LIST, "state": ""}, None),
    "api.abuse_case": ("An abuse case with its reports, history and sanctions", {}, None),
    "api.abuse_case_transition": (
        "Move a case (notify here sends no mail)",
        {},
        _body(
            action="notify | acknowledge | resolve | escalate*",
            comment="required to resolve or escalate",
        ),  # fmt: skip
    ),
    "api.abuse_case_notify": (
        "Mail the case to the holder's abuse contact, then mark it notified",
        {},
        _body(with_sublessee="true: copy the sublessee"),
    ),
    "api.abuse_case_answer": (
        "The customer's answer to its case",
        {},
        _body(status="acknowledged | answered | disputed*", answer="*"),
    ),
    "api.abuse_case_sanction": (
        "Propose the ladder's next rung (a warning is confirmed at once)",
        {},
        _body(reason="*"),
    ),
    "api.sanction_confirm": ("Confirm a proposed sanction; it then takes effect", {}, None),
    "api.abuse_rejected_list": (
        "Rejected input, newest first",
        {**LIST, "status": "rejected (default) | accepted | all"},
        None,
    ),
    "api.abuse_rejected_raw": ("A rejected input, byte for byte", {}, None),
    "api.abuse_rejected_retry": (
        "Run a rejected input again (200 accepted, 422 still refused)",
        {},
        _body(format="arf | xarf-mail | xarf-json | csv | drop (default: detected)"),
    ),
    "api.incidents_list": (
        "Incidents (clause 16)",
        {**LIST, "state": "open | reported | closed"},
        None,
    ),  # fmt: skip
    "api.incident_declare": (
        "Declare an incident; from a case, its reports are frozen as evidence",
        {},
        _body(
            title="*",
            category="an abuse category*",
            hours="2-24 (default 24): the reporting deadline",
            description="",
            case="case id",
            report_ids="reports to freeze as evidence",
        ),
    ),
    "api.incident": ("An incident with its action log and evidence", {}, None),
    "api.incident_log": ("Log a measure or a note", {}, _body(kind="measure | note*", text="*")),
    "api.incident_freeze": ("Freeze reports as evidence", {}, _body(report_ids="[ids]*")),
    "api.incident_reported": (
        "Record the report to the authorities",
        {},
        _body(reported_to="*", text="*"),
    ),
    "api.incident_close": ("Close a reported incident", {}, _body(text="*")),
    "api.incident_export": (
        "The incident report: JSON with the evidence bytes (base64), or ?format=text",
        {"format": "json | text"},
        None,
    ),
    "api.openapi": ("This document", {}, None),
    "api.docs": ("Browsable documentation (HTML)", {}, None),
}

STATUS = {"get": "200", "post": "201", "patch": "200", "delete": "200"}
ACTIONS = (
    "end", "exit", "reclaim", "approve", "reject", "release", "resolve",
    "transition", "notify", "answer", "confirm", "retry", "report", "close",
)  # fmt: skip


def spec(app: Flask) -> dict:
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        summary, params, body = DOCS[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            m = method.lower()
            ok = STATUS[m] if rule.rule.rsplit("/", 1)[-1] not in ACTIONS else "200"
            op = {
                "operationId": rule.endpoint.removeprefix("api."),
                "summary": summary,
                "parameters": [
                    {"name": a, "in": "path", "required": True, "schema": {"type": "integer"}}
                    for a in rule.arguments
                ]
                + [
                    {"name": k, "in": "query", "description": v, "schema": {"type": "string"}}
                    for k, v in params.items()
                ],
                "responses": {
                    ok: {"description": "success"},
                    **{
                        code: {
                            "description": text,
                            "content": {"application/json": {"schema": ERROR}},
                        }
                        for code, text in (
                            ("400", "malformed request"),
                            ("401", "not logged in"),
                            ("403", "your role may not"),
                            ("404", "no such object (or not yours)"),
                            ("409", "conflict or exhausted"),
                            ("422", "a field is invalid"),
                        )
                    },
                },
            }
            if body is not None:
                op["requestBody"] = {"content": {"application/json": {"schema": body}}}
            if rule.endpoint in ("api.openapi", "api.docs"):
                op["security"] = []
            paths.setdefault(path, {})[m] = op
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ipam API",
            "version": "1",
            "description": "IP address management for an ISP: pools, customers, allocations, "
            "sublessees (clause 19), change requests (clause 18), quarantine and attribution. "
            'Every error answers {"error": {"code", "message", "field"}}.',
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "field": {"type": "string", "nullable": True},
                            },
                        }
                    },
                }
            },
        },
        "security": [{"token": []}, {"session": []}],
    }
