"""Every route, every role: allowed or refused, written out by hand (invariant 6).

The table below is the expectation, independent of web/access.py; a route
missing from it fails the test, so new routes must state who may use them.
Customer "A" is 北京云帆 (user yunfan), "B" is 上海星河 (user xinghe); object
ids in the URLs are A's, except the change request, which is B's.
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from ipam import users

ALL = {"admin", "engineer", "A", "B", "auditor"}
STAFF = {"admin", "engineer"}
READERS = {"admin", "engineer", "auditor"}
PUBLIC = "public"
USERS = {
    "admin": "admin",
    "engineer": "engineer",
    "A": "yunfan",
    "B": "xinghe",
    "auditor": "auditor",
    "anon": None,
}

AUDITOR_POSTS = {"report_issue", "certificate_issue", "certificate_verify"}

# (method, url, endpoint, allowed, body)
MATRIX = [
    ("GET", "/login", "auth.login", PUBLIC, None),
    ("POST", "/login", "auth.login", PUBLIC, {"username": "nobody", "password": "wrong"}),
    ("GET", "/lang/en", "ui.set_language", PUBLIC, None),
    ("GET", "/api/v1/openapi.json", "api.openapi", PUBLIC, None),
    ("GET", "/api/v1/docs", "api.docs", PUBLIC, None),
    ("GET", "/static/style.css", "static", PUBLIC, None),
    ("POST", "/logout", "auth.logout", ALL, {}),
    # UI
    ("GET", "/", "ui.dashboard", ALL, None),
    ("GET", "/pools", "ui.pools_page", READERS, None),
    ("GET", "/pools/{pool_id}", "ui.pool", READERS, None),
    ("POST", "/pools/{pool_id}/allocate", "ui.pool_allocate", STAFF, {"prefixlen": "99"}),
    ("GET", "/map?prefix=198.18.7.0/24", "ui.address_map", READERS, None),
    ("GET", "/customers", "ui.customers_page", READERS, None),
    ("GET", "/customers/new", "ui.customer_new", STAFF, None),
    ("POST", "/customers/new", "ui.customer_new", STAFF, {}),
    ("GET", "/customers/{a}", "ui.customer", READERS | {"A"}, None),
    ("GET", "/customers/{a}/exit", "ui.customer_exit", STAFF, None),
    ("POST", "/customers/{a}/exit", "ui.customer_exit", STAFF, {"confirm": "no"}),
    ("GET", "/customers/{a}/reclaim", "ui.customer_reclaim", STAFF, None),
    ("POST", "/customers/{a}/reclaim", "ui.customer_reclaim", STAFF, {"confirm": "no"}),
    ("GET", "/allocations/{a_allocation}/end", "ui.allocation_end", STAFF, None),
    ("GET", "/sublessees/new?customer={a}", "ui.sublessee_new", STAFF | {"A", "B"}, None),
    ("POST", "/sublessees/new?customer={a}", "ui.sublessee_new", STAFF | {"A", "B"}, {}),
    ("GET", "/sublessees/{a_sublessee}/edit", "ui.sublessee_edit", STAFF | {"A"}, None),
    ("POST", "/sublessees/{a_sublessee}/edit", "ui.sublessee_edit", STAFF | {"A"}, {"phone": "1"}),
    ("GET", "/subleases/new?customer={a}", "ui.sublease_new", STAFF | {"A", "B"}, None),
    (
        "POST",
        "/subleases/new?customer={a}",
        "ui.sublease_new",
        STAFF | {"A"},
        {"allocation": "{a_allocation}", "sublessee": "{a_sublessee}", "prefixlen": "99"},
    ),
    ("GET", "/change-requests", "ui.change_requests_page", ALL, None),
    ("GET", "/change-requests/new", "ui.change_request_new", {"A", "B"}, None),
    ("POST", "/change-requests/new", "ui.change_request_new", {"A", "B"}, {}),
    ("GET", "/change-requests/{b_request}", "ui.change_request", READERS | {"B"}, None),
    (
        "POST",
        "/change-requests/{b_request}/decide",
        "ui.change_request_decide",
        STAFF,
        {"decision": "reject"},
    ),
    ("GET", "/quarantine", "ui.quarantine", READERS, None),
    ("POST", "/quarantine/{quarantine_id}/release", "ui.quarantine_release", STAFF, {}),
    ("GET", "/attribution?address=198.18.7.9", "ui.attribution_page", READERS | {"B"}, None),
    ("GET", "/tokens", "ui.tokens", ALL, None),
    ("POST", "/tokens", "ui.token_issue", ALL - {"auditor"}, {}),
    ("GET", "/users", "ui.users_page", {"admin"}, None),
    ("POST", "/users", "ui.users_page", {"admin"}, {}),
    ("POST", "/users/{user_id}", "ui.user_update", {"admin"}, {}),
    ("GET", "/account", "ui.account", ALL, None),
    ("POST", "/account", "ui.account", ALL, {"current_password": "wrong", "password": "x" * 12}),
    # API
    ("GET", "/api/v1/me", "api.me", ALL, None),
    ("GET", "/api/v1/tokens", "api.tokens", ALL, None),
    ("POST", "/api/v1/tokens", "api.token_issue", ALL - {"auditor"}, {}),
    ("GET", "/api/v1/users", "api.users_list", {"admin"}, None),
    ("POST", "/api/v1/users", "api.user_add", {"admin"}, {}),
    ("PATCH", "/api/v1/users/{user_id}", "api.user_update", {"admin"}, {"active": "yes"}),
    ("GET", "/api/v1/pools", "api.pools_list", READERS, None),
    ("POST", "/api/v1/pools", "api.pool_add", STAFF, {}),
    ("GET", "/api/v1/pools/{pool_id}", "api.pool", READERS, None),
    ("GET", "/api/v1/customers", "api.customers_list", ALL, None),
    ("POST", "/api/v1/customers", "api.customer_add", STAFF, {}),
    ("GET", "/api/v1/customers/{a}", "api.customer", READERS | {"A"}, None),
    ("PATCH", "/api/v1/customers/{a}", "api.customer_update", STAFF, {"name": ""}),
    ("POST", "/api/v1/customers/{a}/exit", "api.customer_exit", STAFF, {"quarantine_days": -1}),
    ("POST", "/api/v1/customers/{a}/reclaim", "api.customer_reclaim", STAFF, {}),
    ("GET", "/api/v1/allocations", "api.allocations_list", ALL, None),
    (
        "POST",
        "/api/v1/allocations",
        "api.allocation_add",
        STAFF,
        {"pool": "{pool_id}", "customer": "{a}", "prefixlen": 99},
    ),
    ("GET", "/api/v1/allocations/{a_allocation}", "api.allocation_get", READERS | {"A"}, None),
    (
        "POST",
        "/api/v1/allocations/{a_allocation}/end",
        "api.allocation_end",
        STAFF,
        {"quarantine_days": -1},
    ),
    ("GET", "/api/v1/sublessees", "api.sublessees_list", ALL, None),
    ("POST", "/api/v1/sublessees", "api.sublessee_add", STAFF | {"A"}, {"customer": "{a}"}),
    ("GET", "/api/v1/sublessees/{a_sublessee}", "api.sublessee", READERS | {"A"}, None),
    (
        "PATCH",
        "/api/v1/sublessees/{a_sublessee}",
        "api.sublessee_update",
        STAFF | {"A"},
        {"phone": "12"},
    ),
    ("GET", "/api/v1/subleases", "api.subleases_list", ALL, None),
    (
        "POST",
        "/api/v1/subleases",
        "api.sublease_add",
        STAFF | {"A"},
        {"allocation": "{a_allocation}", "sublessee": "{a_sublessee}", "prefixlen": 99},
    ),
    ("GET", "/api/v1/change-requests", "api.change_requests_list", ALL, None),
    ("POST", "/api/v1/change-requests", "api.change_request_add", {"A", "B"}, {}),
    ("GET", "/api/v1/change-requests/{b_request}", "api.change_request", READERS | {"B"}, None),
    (
        "POST",
        "/api/v1/change-requests/{b_request}/approve",
        "api.change_request_approve",
        STAFF,
        {},
    ),
    ("POST", "/api/v1/change-requests/{b_request}/reject", "api.change_request_reject", STAFF, {}),
    ("GET", "/api/v1/quarantine", "api.quarantine_list", READERS, None),
    ("POST", "/api/v1/quarantine/{quarantine_id}/release", "api.quarantine_release", STAFF, {}),
    ("GET", "/api/v1/attribution?address=198.18.7.9", "api.attribution_get", READERS | {"B"}, None),
    ("GET", "/api/v1/map?prefix=198.18.7.0/24", "api.address_map", READERS, None),
    # probes (clause 19)
    ("GET", "/probes", "ui.probes_page", READERS, None),
    ("POST", "/probes", "ui.probe_schedule_add", STAFF, {}),
    ("GET", "/probes/{schedule_id}", "ui.probe_schedule_page", READERS, None),
    ("POST", "/probes/{schedule_id}", "ui.probe_schedule_edit", STAFF, {"cron": "bad"}),
    ("POST", "/probes/{schedule_id}/run", "ui.probe_schedule_run", STAFF, {}),
    ("GET", "/probes/runs/{run_id}", "ui.probe_run_page", READERS, None),
    ("GET", "/findings", "ui.findings_page", READERS, None),
    ("GET", "/findings/{finding_id}", "ui.finding_page", READERS, None),
    ("POST", "/findings/{finding_id}/resolve", "ui.finding_resolve", STAFF, {}),
    ("GET", "/api/v1/probe-schedules", "api.probe_schedules_list", READERS, None),
    ("POST", "/api/v1/probe-schedules", "api.probe_schedule_add", STAFF, {}),
    ("GET", "/api/v1/probe-schedules/{schedule_id}", "api.probe_schedule", READERS, None),
    (
        "PATCH",
        "/api/v1/probe-schedules/{schedule_id}",
        "api.probe_schedule_update",
        STAFF,
        {"cron": "bad"},
    ),
    ("POST", "/api/v1/probe-schedules/{schedule_id}/run", "api.probe_schedule_run", STAFF, {}),
    ("GET", "/api/v1/probe-runs", "api.probe_runs_list", READERS, None),
    ("GET", "/api/v1/probe-runs/{run_id}", "api.probe_run", READERS, None),
    ("GET", "/api/v1/findings", "api.findings_list", READERS, None),
    ("GET", "/api/v1/jobs/999999", "api.job_get", READERS, None),
    ("GET", "/api/v1/data-centres", "api.data_centres_list", READERS, None),
    ("POST", "/api/v1/data-centres", "api.data_centre_add", STAFF, {"name": "Bad Name"}),
    ("POST", "/api/v1/pools/{pool_id}/site", "api.pool_place", STAFF, {"site": "nowhere"}),
    ("GET", "/data-centres", "ui.data_centres_page", READERS, None),
    ("POST", "/data-centres", "ui.data_centre_add", STAFF, {"name": "Bad Name"}),
    ("POST", "/data-centres/place", "ui.data_centre_place", STAFF, {"pool": "x"}),
    ("GET", "/api/v1/findings/{finding_id}", "api.finding", READERS, None),
    ("POST", "/api/v1/findings/{finding_id}/resolve", "api.finding_resolve", STAFF, {}),
    # abuse desk
    ("GET", "/abuse/cases", "ui.abuse_cases_page", READERS, None),
    ("GET", "/abuse/cases/{a_case}", "ui.abuse_case_page", READERS | {"A"}, None),
    ("POST", "/abuse/cases/{a_case}/action", "ui.abuse_case_action", STAFF, {"action": "x"}),
    ("POST", "/abuse/cases/{a_case}/answer", "ui.abuse_case_answer", {"A"}, {"answer": ""}),
    ("POST", "/api/v1/abuse/reports", "api.abuse_report_add", STAFF, {}),
    ("GET", "/api/v1/abuse/cases", "api.abuse_cases_list", ALL, None),
    ("GET", "/api/v1/abuse/cases/{a_case}", "api.abuse_case", READERS | {"A"}, None),
    (
        "POST",
        "/api/v1/abuse/cases/{a_case}/transition",
        "api.abuse_case_transition",
        STAFF,
        {"action": "x"},
    ),
    ("POST", "/api/v1/abuse/cases/{a_case}/notify", "api.abuse_case_notify", STAFF, {}),
    (
        "POST",
        "/api/v1/abuse/cases/{a_case}/owner",
        "api.abuse_case_owner",
        STAFF,
        {"owner": "auditor"},
    ),
    ("POST", "/api/v1/abuse/cases/{a_case}/answer", "api.abuse_case_answer", {"A"}, {}),
    ("POST", "/api/v1/abuse/cases/{a_case}/sanctions", "api.abuse_case_sanction", STAFF, {}),
    ("POST", "/api/v1/sanctions/{sanction_id}/confirm", "api.sanction_confirm", STAFF, {}),
    ("GET", "/api/v1/abuse/rejected", "api.abuse_rejected_list", READERS, None),
    ("GET", "/api/v1/abuse/unattributed", "api.abuse_unattributed_list", READERS, None),
    ("GET", "/abuse/unattributed", "ui.abuse_unattributed_page", READERS, None),
    ("GET", "/api/v1/abuse/rejected/{rejected_id}/raw", "api.abuse_rejected_raw", READERS, None),
    (
        "POST",
        "/api/v1/abuse/rejected/{rejected_id}/retry",
        "api.abuse_rejected_retry",
        STAFF,
        {"format": "nonsense"},
    ),
    ("GET", "/abuse/reports/new", "ui.abuse_report_form", STAFF, None),
    ("POST", "/abuse/reports/new", "ui.abuse_report_submit", STAFF, {"address": "x"}),
    ("GET", "/abuse/rejected", "ui.abuse_rejected_page", READERS, None),
    ("GET", "/abuse/rejected/{rejected_id}/raw", "ui.abuse_rejected_raw", READERS, None),
    (
        "POST",
        "/abuse/rejected/{rejected_id}/retry",
        "ui.abuse_rejected_retry",
        STAFF,
        {"format": "nonsense"},
    ),
    # incidents (clause 16)
    ("GET", "/incidents", "ui.incidents_page", READERS, None),
    ("POST", "/incidents", "ui.incident_declare", STAFF, {"title": ""}),
    ("GET", "/incidents/{incident_id}", "ui.incident_page", READERS, None),
    ("POST", "/incidents/{incident_id}", "ui.incident_action", STAFF, {"action": "x"}),
    ("GET", "/incidents/{incident_id}/export", "ui.incident_export", READERS, None),
    ("GET", "/api/v1/incidents", "api.incidents_list", READERS, None),
    ("POST", "/api/v1/incidents", "api.incident_declare", STAFF, {"title": ""}),
    ("GET", "/api/v1/incidents/{incident_id}", "api.incident", READERS, None),
    ("POST", "/api/v1/incidents/{incident_id}/actions", "api.incident_log", STAFF, {}),
    ("POST", "/api/v1/incidents/{incident_id}/evidence", "api.incident_freeze", STAFF, {}),
    ("POST", "/api/v1/incidents/{incident_id}/report", "api.incident_reported", STAFF, {}),
    ("POST", "/api/v1/incidents/{incident_id}/close", "api.incident_close", STAFF, {}),
    ("GET", "/api/v1/incidents/{incident_id}/export", "api.incident_export", READERS, None),
    # reports, certificates and the sites register (issue 13)
    ("GET", "/reports", "ui.reports_page", ALL, None),
    ("GET", "/reports/ip_filing", "ui.report_page", ALL, None),
    ("GET", "/reports/clause6", "ui.report_page", READERS, None),
    ("POST", "/reports/ip_filing/issue", "ui.report_issue", READERS, {"format": "nonsense"}),
    ("GET", "/issued/{a_issued}", "ui.issued_download", READERS | {"A"}, None),
    ("GET", "/certificates", "ui.certificates_page", ALL, None),
    ("POST", "/certificates/issue", "ui.certificate_issue", ALL, {"address": "203.0.113.1"}),
    ("POST", "/certificates/verify", "ui.certificate_verify", ALL, {}),
    ("GET", "/sites", "ui.sites_page", ALL, None),
    ("GET", "/sites/new", "ui.site_new", STAFF | {"A", "B"}, None),
    ("POST", "/sites/new", "ui.site_new", STAFF | {"A"}, {"customer": "{a}", "name": ""}),
    ("POST", "/sites/{a_site}/close", "ui.site_close", STAFF | {"A"}, {"reason": ""}),
    ("GET", "/search?q=198.18.7.9", "ui.search_page", ALL, None),
    # lists to filter, sort and export (issue 16, item 3)
    ("GET", "/lists", "ui.lists_page", ALL, None),
    ("GET", "/history?address=198.18.7.9", "ui.history_page", ALL, None),
    ("GET", "/pools/{pool_id}/history", "ui.pool_history", READERS, None),
    ("GET", "/lists/allocations?state=all", "ui.list_page", ALL, None),
    ("GET", "/lists/audit", "ui.list_page", READERS, None),
    ("GET", "/api/v1/lists", "api.lists_list", ALL, None),
    ("GET", "/api/v1/lists/sublessees", "api.list_get", ALL, None),
    ("GET", "/api/v1/lists/audit", "api.list_get", READERS, None),
    ("GET", "/api/v1/search?q=198.18.7.9", "api.search_get", ALL, None),
    ("GET", "/api/v1/reports", "api.reports_list", ALL, None),
    ("GET", "/api/v1/reports/ip_filing", "api.report_get", ALL, None),
    ("GET", "/api/v1/reports/clause6", "api.report_get", READERS, None),
    ("POST", "/api/v1/reports/ip_filing/issue", "api.report_issue", READERS, {"format": "x"}),
    ("GET", "/api/v1/issued", "api.issued_list", ALL, None),
    ("GET", "/api/v1/issued/{a_issued}", "api.issued_get", READERS | {"A"}, None),
    ("POST", "/api/v1/certificates", "api.certificate_issue", ALL, {"address": "203.0.113.1"}),
    ("POST", "/api/v1/certificates/verify", "api.certificate_verify", ALL, None),
    ("GET", "/api/v1/sites", "api.sites_list", ALL, None),
    ("POST", "/api/v1/sites", "api.site_add", STAFF | {"A"}, {"customer": "{a}"}),
    ("PATCH", "/api/v1/sites/{a_site}", "api.site_update", STAFF, {"category": "x"}),
    ("POST", "/api/v1/sites/{a_site}/close", "api.site_close", STAFF | {"A"}, {}),
    # Last: these end or revoke things the rows above use.
    ("POST", "/subleases/{a_sublease}/end", "ui.sublease_end", STAFF | {"A"}, {}),
    ("POST", "/api/v1/subleases/{a_sublease}/end", "api.sublease_end", STAFF | {"A"}, {}),
    ("POST", "/allocations/{a_allocation}/end", "ui.allocation_end", STAFF, {}),
    ("POST", "/tokens/{token}/revoke", "ui.token_revoke", {"admin", "A"}, {}),
    ("DELETE", "/api/v1/tokens/{token}", "api.token_revoke", {"admin", "A"}, None),
]


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def test_every_route_is_in_the_matrix(web_app):
    covered = {(m, e) for m, _, e, _, _ in MATRIX}
    routes = {
        (method, rule.endpoint)
        for rule in web_app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes - covered == set(), "routes without an expectation"
    assert covered - routes == set(), "expectations for routes that do not exist"


@pytest.mark.parametrize("who", ["B", "auditor", "anon", "engineer", "A", "admin"])
def test_each_role_gets_exactly_what_the_matrix_allows(login, world, engine, who):
    with Session(engine) as s:
        token, _ = users.issue_token(s, "yunfan", "matrix", actor="test")
        s.commit()
        ids = {**world, "token": token.id}
    client = login(USERS[who])
    wrong = []
    for method, url, endpoint, allowed, body in MATRIX:
        if endpoint == "auth.logout":
            continue  # checked last: it ends the session the other rows use
        url = _fill(url, ids)
        body = _fill(body, ids)
        if url.startswith("/api/"):
            response = client.api(method, url, json=body)
        elif method == "POST":
            response = client.form(url, body)
        else:
            response = client.get(url)
        status = response.status_code
        response.close()
        if endpoint == "auth.login" and method == "POST":
            ok = status in (400, 401)  # wrong password (or, for anon here, no CSRF token)
        elif allowed == PUBLIC:
            ok = status in (200, 302)
        elif who == "anon":
            # UI pages send the visitor to log in; forms without a session fail CSRF; API: 401.
            ok = (status == 302 and "/login" in response.location) or status in (400, 401)
        elif who in allowed:
            ok = status not in (401, 403) and not (who in ("A", "B") and status == 404)
        else:
            # Another customer's objects, and another user's tokens, answer 404 as if absent.
            hidden = who in ("A", "B") or endpoint in ("ui.token_revoke", "api.token_revoke")
            ok = status == 403 or (hidden and status == 404)
        if not ok:
            wrong.append(
                f"{method} {url} -> {status} ({'allowed' if who in allowed else 'refused'}"
                f" expected) {response.get_data(as_text=True)[:160]!r}"
            )
        # Changing one's own password, issuing a report or a certificate (a record of what was
        # handed out) and checking a certificate are no ledger writes: auditors may.
        not_write = endpoint == "ui.account" or endpoint.rpartition(".")[2] in AUDITOR_POSTS
        if who == "auditor" and method != "GET" and allowed != PUBLIC and not not_write:
            assert status == 403, f"auditor wrote via {method} {url}: {status}"
    assert wrong == [], "\n".join(wrong)
    if who != "anon":
        assert client.form("/logout").status_code == 302
        assert client.get("/").status_code == 302  # logged out
