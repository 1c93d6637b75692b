"""An address's history as a picture (SVG, no script) and the same facts as a table."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from sqlalchemy import select
from sqlalchemy.orm import Session

from ipam.models import Allocation, Customer


def lanes(page: str) -> list[tuple[str, str]]:
    rows = re.findall(r'<tr data-lane="(\w+)"><td>[^<]*</td><td>(?:<a [^>]*>)?([^<]*)', page)
    return [(lane, who) for lane, who in rows]


def test_the_history_draws_every_holder_sublease_and_case_on_one_axis(engineer, world, engine):
    page = engineer.get("/history?address=198.18.7.9").get_data(as_text=True)
    svg = re.search(r"<svg id=\"timeline\".*?</svg>", page, re.S).group(0)
    root = ET.fromstring(svg)  # well-formed, drawn on the server
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img" and root.find(f"{ns}title").text.endswith("的历史")
    spans = root.findall(f"{ns}g")
    found = lanes(page)
    assert len(spans) == len(found) > 0  # the table lists what the picture draws
    with Session(engine) as s:
        holders = {
            name
            for (name,) in s.execute(
                select(Customer.name)
                .join(Allocation, Allocation.customer_id == Customer.id)
                .where(Allocation.family == 4)
            )
        }
    held = {who for lane, who in found if lane == "holder"}
    assert held and held <= holders
    assert {lane for lane, _ in found} >= {"holder", "sublease", "case"}
    assert "<script" not in page.split("<main", 1)[1]


def test_a_customer_sees_only_its_own_part_of_the_history(login, world):
    a = login("yunfan")
    page = a.get("/history?address=198.18.7.0/24").get_data(as_text=True)
    held = {who for lane, who in lanes(page) if lane == "holder"}
    assert held == {"北京云帆网络科技有限公司"} or held == set()
    engineer_page = login("engineer").get("/history?address=198.18.7.0/24")
    everyone = {who for lane, who in lanes(engineer_page.get_data(as_text=True))
                if lane == "holder"}  # fmt: skip
    assert len(everyone) > len(held)


def test_a_bad_address_names_the_field(engineer):
    r = engineer.get("/history?address=198.18.7.1/33")
    assert r.status_code == 422 and 'data-field="address"' in r.get_data(as_text=True)


def test_cases_per_week_and_a_pools_utilization_are_drawn_with_their_numbers(
    engineer, world, engine
):
    page = engineer.get("/abuse/cases").get_data(as_text=True)
    svg = re.search(r"<svg id=\"weekly\".*?</svg>", page, re.S).group(0)
    ET.fromstring(svg)
    table = re.search(r'<table id="weekly-table">.*?</table>', page, re.S).group(0)
    weeks = re.findall(r"<tr><td>(\d{4}-\d{2}-\d{2})</td>", table)
    assert len(weeks) == 12 and weeks == sorted(weeks)
    totals = [int(t) for t in re.findall(r"<td>(\d+)</td></tr>", table)]
    from ipam.models import AbuseCase

    with Session(engine) as s:
        opened = [c.opened_at for c in s.scalars(select(AbuseCase))]
    assert sum(totals) == len(opened) > 0  # the world's cases were all opened this week
    page = engineer.get(f"/pools/{world['pool_id']}/history").get_data(as_text=True)
    svg = re.search(r"<svg id=\"utilization\".*?</svg>", page, re.S).group(0)
    ET.fromstring(svg)
    shares = re.findall(r"<td>([\d.]+) %</td></tr>", page)
    assert len(shares) == 12 and float(shares[-1]) > 0  # the pool holds something now
