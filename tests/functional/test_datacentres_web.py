"""Data centres in the API and the UI (issue 17): the register, placing pools, and the
dashboard saying why a site's runs wait. The broker named here is away on purpose: asking
for a run must still work (the run waits in the database for the hand-over)."""

from __future__ import annotations

import pytest

from tests.functional.test_api import error_of

AWAY = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def brokered(web_app):
    web_app.config["IPAM_BROKER_URL"] = AWAY
    return web_app


def test_a_site_is_added_a_pool_placed_and_its_waiting_run_shown_with_why(
    brokered, engineer, login, world
):
    for body, field in (({"name": "Bad Name"}, "name"), ({"name": "default"}, "name")):
        assert (
            error_of(engineer.api("POST", "/api/v1/data-centres", json=body), 422)["field"] == field
        )
    r = engineer.api("POST", "/api/v1/data-centres", json={"name": "gz3", "description": "广州"})
    assert r.status_code == 201, r.get_data(as_text=True)
    bad = engineer.api("POST", f"/api/v1/pools/{world['pool_id']}/site", json={"site": "nowhere"})
    assert error_of(bad, 404)["field"] == "site"
    placed = engineer.api("POST", f"/api/v1/pools/{world['pool_id']}/site", json={"site": "gz3"})
    assert placed.get_json()["site"] == "gz3"
    # Run now, with the broker away: accepted, queued for gz3's workers.
    run = engineer.api("POST", f"/api/v1/probe-schedules/{world['schedule_id']}/run")
    assert run.status_code == 201 and run.get_json()["site"] == "gz3", run.get_data(as_text=True)
    (gz3,) = [
        c for c in engineer.api("GET", "/api/v1/data-centres").get_json() if c["name"] == "gz3"
    ]
    assert gz3["waiting"] == 1 and gz3["why_waiting"] == "never" and gz3["live_workers"] == []
    assert "198.18.0.0/16" in gz3["pools"]
    # The dashboard lists it first, in Chinese, with the command to run.
    page = login("admin").get("/", headers={"Accept-Language": "zh"}).get_data(as_text=True)
    card = page[page.index('id="site-health"') :]
    assert 'data-site="gz3"' in card and "从未有工作进程" in card
    assert "<code>ipam worker --site gz3</code>" in card
    # The UI page, and its forms' refusals name the field.
    page = engineer.get("/data-centres").get_data(as_text=True)
    assert 'data-site="gz3"' in page and "198.18.0.0/16" in page
    r = engineer.form("/data-centres", {"name": "Bad Name"})
    assert r.status_code == 422 and 'data-field="name"' in r.get_data(as_text=True)
    r = engineer.form("/data-centres/place", {"pool": str(world["pool_id"]), "site": "default"})
    assert r.status_code == 302
    (gz3,) = [
        c for c in engineer.api("GET", "/api/v1/data-centres").get_json() if c["name"] == "gz3"
    ]
    assert gz3["pools"] == []


def test_without_a_broker_the_dashboard_has_no_site_card(web_app, login, world):
    web_app.config["IPAM_BROKER_URL"] = ""
    page = login("admin").get("/").get_data(as_text=True)
    assert 'id="site-health"' not in page
