"""Personal data (ID numbers, phones) never leaves in full unless revealed with a reason.

Walks every page, API answer and export the access matrix lists, as every
role that may read it, looking for any ID number or phone stored in the
world in full (invariant 9). Revealing is possible, audited, and needs a reason.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ipam import change_requests
from ipam.models import AuditLog, Customer, CustomerRevision, Sublessee, SublesseeRevision
from tests.functional.test_access_matrix import MATRIX, USERS, _fill

PERSONAL = ("phone", "id_number", "contact_phone")


def _walk(value, found: set):
    if isinstance(value, dict):
        for key, item in value.items():
            if key in PERSONAL and isinstance(item, str) and len(item) >= 6:
                found.add(item)
            else:
                _walk(item, found)
    elif isinstance(value, list):
        for item in value:
            _walk(item, found)


def personal_values(engine) -> set[str]:
    """Every ID number and phone the database holds, in full, wherever it is stored."""
    found: set[str] = set()
    with Session(engine) as s:
        for c in s.scalars(select(Customer)):
            _walk({"c": c.contacts, "r": c.responsible_persons}, found)
        for sub in s.scalars(select(Sublessee)):
            _walk({"id_number": sub.id_number, "phone": sub.phone}, found)
        for snap in s.scalars(select(CustomerRevision.snapshot)):
            _walk(snap, found)
        for snap in s.scalars(select(SublesseeRevision.snapshot)):
            _walk(snap, found)
    return found


def leaks(text: str, values: set[str]) -> list[str]:
    flat = re.sub(r"[\s\-]", "", text)
    return sorted(v for v in values if v in text or v in flat)


def test_the_world_holds_personal_data_to_look_for(world, engine):
    values = personal_values(engine)
    assert len(values) >= 6, values  # phones of contacts and sublessees, ID numbers


@pytest.mark.parametrize("who", ["engineer", "auditor", "A", "B", "admin"])
def test_no_page_answer_or_export_shows_personal_data_in_full(login, world, engine, who):
    # A change request carrying new contacts: its page and answers show them masked too.
    with Session(engine) as s:
        contacts = [{"name": "王芳", "role": "abuse", "phone": "13912345678"}]
        change_requests.submit(
            s, world["b"], "customer", {"contacts": contacts}, reason="new abuse desk", actor="t"
        )
        s.commit()
    values = personal_values(engine) | {"13912345678"}
    client = login(USERS[who])
    urls = [
        "/api/v1/change-requests",
        "/change-requests",
        *(f"/api/v1/change-requests/{i}" for i in range(1, 5)),
        *(f"/change-requests/{i}" for i in range(1, 5)),
    ]
    for method, url, endpoint, allowed, _body in MATRIX:
        if method != "GET" or (allowed != "public" and who not in allowed):
            continue
        if endpoint in ("ui.sublessee_edit",):
            continue  # the owner's own edit form; checked below
        urls.append(_fill(url, world))
    # Exports in every format, and the rejected inputs' raw bytes.
    urls += [
        _fill("/api/v1/incidents/{incident_id}/export?format=text", world),
        _fill("/incidents/{incident_id}/export?format=text", world),
    ]
    seen = []
    for url in urls:
        response = client.api("GET", url) if url.startswith("/api/") else client.get(url)
        text = response.get_data(as_text=True)
        response.close()
        if response.status_code >= 400:
            continue
        seen.append(url)
        found = leaks(text, values)
        assert not found, f"{who} GET {url} shows {found}"
    assert len(seen) >= 10


def test_the_incident_export_masks_and_reveals_only_with_a_reason(login, world, engine):
    values = personal_values(engine)
    client = login("auditor")
    url = _fill("/api/v1/incidents/{incident_id}/export", world)
    masked = client.api("GET", url)
    assert masked.status_code == 200
    holder = masked.get_json()["evidence"][0]["holder"]
    assert "*" in json.dumps(holder, ensure_ascii=False)  # something was masked
    assert not leaks(masked.get_data(as_text=True), values)

    refused = client.api("GET", url + "?reveal=true&reason=x")
    assert refused.status_code == 422
    assert refused.get_json()["error"]["field"] == "reason"
    with Session(engine) as s:
        before = s.scalar(select(AuditLog.seq).order_by(AuditLog.seq.desc()).limit(1))
    revealed = client.api("GET", url + "?reveal=true&reason=police request 2026-118")
    assert revealed.status_code == 200
    assert leaks(revealed.get_data(as_text=True), values)  # in full now
    with Session(engine) as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.seq > before)).one()
    assert entry.action == "incident.reveal"
    assert entry.actor == "user:auditor"
    assert entry.data["reason"] == "police request 2026-118"


def test_customers_cannot_reveal(login, world):
    client = login("yunfan")
    url = _fill("/api/v1/attribution?address=198.18.7.9&reveal=true&reason=just curious, ok", world)
    refused = client.api("GET", url)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["field"] == "reveal"


def test_the_cli_export_masks_unless_revealed(cli_app, world, engine):
    values = personal_values(engine)
    runner = cli_app.test_cli_runner()
    incident = str(world["incident_id"])
    for fmt in ("json", "text"):
        out = runner.invoke(args=["incident", "export", incident, "--format", fmt])
        assert out.exit_code == 0, out.output
        assert not leaks(out.output, values), fmt
    reason = "court order 7781/2026"
    out = runner.invoke(
        args=["incident", "export", incident, "--format", "json", "--reveal", "--reason", reason]
    )
    assert out.exit_code == 0, out.output
    assert leaks(out.output, values)
    whois = runner.invoke(args=["whois", "198.19.0.1", "--json"])
    assert whois.exit_code == 0, whois.output
    assert not leaks(whois.output, values)
