"""UI flows in a real headless Chromium (Debian's chromium and chromium-driver).

Screenshots are saved to test-artifacts/ (or $IPAM_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from ipam import demo
from ipam.certificates import Keyring
from tests.conftest import migrated_url
from tests.factories import resident_id
from web import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(
    os.environ.get("IPAM_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)


def _browser_missing() -> str | None:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        return (
            "Debian's chromium and chromium-driver are not installed "
            "(apt-get install chromium chromium-driver; .ci/run installs them)"
        )
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    reason = _browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    url = migrated_url("sqlite", tmp_path_factory)
    engine = create_engine(url)
    with Session(engine) as s:
        demo.seed(s, echo=lambda *_: None)
        s.commit()
    engine.dispose()
    keys = tmp_path_factory.mktemp("keys")
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "browser-test", "IPAM_KEYS_DIR": str(keys)}
    )
    Keyring.from_config(app.config).init()
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()


@pytest.fixture
def browser(server, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        "--lang=zh-CN",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    driver.downloads = downloads
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def log_in(driver, server, username, password):
    from selenium.webdriver.common.by import By

    driver.get(server + "/lang/zh")  # start in Chinese, whatever the browser asks for
    driver.get(server + "/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    assert username in driver.find_element(By.ID, "whoami").text


def test_customer_registers_a_sublessee_after_fixing_the_id(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, server, "yunfan", "demo-customer-pass")
    assert "北京云帆" in browser.find_element(By.ID, "customer-name").text
    browser.find_element(By.ID, "register-sublessee").click()
    Select(browser.find_element(By.ID, "kind")).select_by_value("person")
    values = {
        "name": "王五",
        "id_number": "110105198803151233",
        "contact_person": "王五",
        "phone": "13912345678",
        "email": "wang@example.com",
        "address": "北京市海淀区",
        "purpose": "个人博客",
        "domains": "wangwu.example",
    }
    for field, value in values.items():
        browser.find_element(By.ID, field).send_keys(value)
    browser.find_element(By.ID, "register").click()
    error = browser.find_element(By.ID, "id_number-error")
    assert "校验码错误（GB 11643）：应为 2" in error.text
    shot(browser, "sublessee-bad-id")
    box = browser.find_element(By.ID, "id_number")
    assert "invalid" in box.get_attribute("class")
    assert browser.find_element(By.ID, "name").get_attribute("value") == "王五"
    box.clear()
    box.send_keys(resident_id())
    browser.find_element(By.ID, "register").click()
    table = browser.find_element(By.ID, "sublessees").text
    assert "王五" in table
    shot(browser, "sublessee-listed")
    assert "转租对象" in browser.page_source
    # The same page in English.
    browser.find_element(By.ID, "lang-en").click()
    assert "Sublessees" in browser.page_source and "王五" in browser.page_source
    shot(browser, "customer-page-english")


def test_engineer_allocates_the_next_free_29(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, server, "engineer", "demo-engineer-pass")
    browser.find_element(By.LINK_TEXT, "地址池").click()
    browser.find_element(By.LINK_TEXT, "Beijing DC1").click()
    Select(browser.find_element(By.ID, "customer")).select_by_visible_text(
        "杭州青木电子商务有限公司"
    )
    browser.find_element(By.ID, "prefixlen").send_keys("29")
    browser.find_element(By.ID, "allocate").click()
    flash = browser.find_element(By.CLASS_NAME, "flash").text
    assert flash.startswith("已分配 198.18.") and flash.endswith("/29。")
    prefix = flash.removeprefix("已分配 ").removesuffix("。")
    assert prefix in browser.find_element(By.ID, "recent").text
    shot(browser, "engineer-allocated-29")


def test_engineer_schedules_a_probe_fixes_the_cron_and_runs_it_now(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait

    log_in(browser, server, "engineer", "demo-engineer-pass")
    browser.find_element(By.LINK_TEXT, "探测").click()
    browser.find_element(By.ID, "name").send_keys("青木 web shop")
    Select(browser.find_element(By.ID, "customer")).select_by_visible_text(
        "杭州青木电子商务有限公司"
    )
    cron = browser.find_element(By.ID, "cron")
    cron.clear()
    cron.send_keys("every ten minutes")
    browser.find_element(By.CSS_SELECTOR, "#schedule-form button[type=submit]").click()
    error = browser.find_element(By.ID, "cron-error")
    assert "cron" in error.text
    shot(browser, "probe-schedule-bad-cron")
    cron = browser.find_element(By.ID, "cron")
    cron.clear()
    cron.send_keys("*/10 * * * *")
    browser.find_element(By.CSS_SELECTOR, "#schedule-form button[type=submit]").click()
    assert browser.find_element(By.CLASS_NAME, "flash").text == "探测计划已添加。"
    row = browser.find_element(By.CSS_SELECTOR, '[data-schedule="青木 web shop"]')
    old = browser.find_element(By.CLASS_NAME, "flash")
    row.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 10).until(staleness_of(old))  # the next page, not this one's flash
    assert "运行已排队" in browser.find_element(By.CLASS_NAME, "flash").text
    runs = browser.find_element(By.CLASS_NAME, "runs").text
    assert "青木 web shop" in runs and "手动" in runs
    shot(browser, "probe-run-queued")


def test_customer_answers_an_abuse_case(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, server, "xinghe", "demo-customer-pass")
    row = browser.find_element(By.CSS_SELECTOR, "#customer-abuse + table tr.case-notified")
    row.find_element(By.TAG_NAME, "a").click()
    assert browser.find_element(By.ID, "case-state").text == "已通知"
    Select(browser.find_element(By.ID, "customer_status")).select_by_value("answered")
    browser.find_element(By.ID, "answer").send_keys("已清除木马并重装系统")
    browser.find_element(By.CSS_SELECTOR, "#answer-form button[type=submit]").click()
    assert browser.find_element(By.CLASS_NAME, "flash").text == "您的答复已记录。"
    assert browser.find_element(By.ID, "customer-status").text == "已答复"
    assert "已清除木马并重装系统" in browser.find_element(By.ID, "events").text
    shot(browser, "customer-answered-abuse-case")


def test_engineer_types_in_a_complaint_and_declares_an_incident_from_its_case(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait

    log_in(browser, server, "engineer", "demo-engineer-pass")
    browser.find_element(By.LINK_TEXT, "滥用投诉").click()
    browser.find_element(By.ID, "new-report").click()
    browser.find_element(By.ID, "address").send_keys("198.18.7.999")
    browser.find_element(By.ID, "time").send_keys("2026-01-01T09:00:00+08:00")
    Select(browser.find_element(By.ID, "category")).select_by_value("attack")
    browser.find_element(By.ID, "description").send_keys("电话投诉：SSH 暴力破解")
    browser.find_element(By.ID, "submit-report").click()
    assert "198.18.7.999" in browser.find_element(By.ID, "address-error").text
    address = browser.find_element(By.ID, "address")
    address.clear()
    address.send_keys("198.18.7.9")
    browser.find_element(By.ID, "submit-report").click()
    # 198.18.7.9 belonged to 北京云帆 (sub-leased to 北京蜂巢) on 2026-01-01, not today's holder.
    assert "记入本案件" in browser.find_element(By.CLASS_NAME, "flash").text
    header = browser.find_element(By.CSS_SELECTOR, ".card").text
    assert "北京云帆" in header and "北京蜂巢" in header
    hours = browser.find_element(By.ID, "hours")
    hours.clear()
    hours.send_keys("6")
    browser.find_element(By.ID, "declare").click()
    assert browser.find_element(By.ID, "incident-state").text == "未处理"
    evidence = browser.find_element(By.ID, "evidence").text
    assert "form" in evidence and "198.18.7.9" in evidence
    browser.find_element(By.ID, "text").send_keys("已在边界封禁 198.18.7.9")
    old = browser.find_element(By.CLASS_NAME, "flash")  # "incident declared", from the redirect
    browser.find_element(By.ID, "action-measure").click()
    WebDriverWait(browser, 10).until(staleness_of(old))
    assert browser.find_element(By.CLASS_NAME, "flash").text == "安全事件已更新。"
    assert "已在边界封禁 198.18.7.9" in browser.find_element(By.ID, "actions").text
    shot(browser, "incident-declared-from-case")


def downloaded(driver, suffix: str, before: set) -> Path:
    """The file a click just downloaded (waits for Chromium to finish writing it)."""
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = [
            p for p in driver.downloads.iterdir()
            if p.name.endswith(suffix) and p.name not in before
        ]  # fmt: skip
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} file downloaded: {list(driver.downloads.iterdir())}")


def test_auditor_filters_a_report_issues_it_in_each_format_and_a_certificate(browser, server):
    import io

    from openpyxl import load_workbook
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, server, "auditor", "demo-auditor-pass")
    browser.find_element(By.LINK_TEXT, "监管报告").click()
    browser.find_element(By.LINK_TEXT, "IP地址备案变更表").click()
    browser.find_element(By.ID, "from").send_keys("2025-01-01")
    browser.find_element(By.ID, "to").send_keys("2026-12-31")
    browser.find_element(By.ID, "report-show").click()
    table = browser.find_element(By.ID, "report-rows").text
    assert "变更类型" in table and "198.18.7.0/24" in table and "逾期" in table
    shot(browser, "report-filtered")
    files = {}
    for fmt, suffix in (("pdf", ".pdf"), ("xlsx", ".xlsx"), ("csv", ".csv")):
        Select(browser.find_element(By.ID, "issue-format")).select_by_value(fmt)
        browser.find_element(By.ID, "issue-button").click()
        row = browser.find_element(By.CSS_SELECTOR, "#issued-list tr.highlight")
        before = {p.name for p in browser.downloads.iterdir()}
        row.find_element(By.CSS_SELECTOR, "a.issued-file").click()
        files[fmt] = downloaded(browser, suffix, before).read_bytes()
        browser.back()
    shot(browser, "reports-issued")
    assert files["pdf"].startswith(b"%PDF-")
    sheet = load_workbook(io.BytesIO(files["xlsx"])).worksheets[0]
    assert sheet.cell(1, 1).value == "变更类型" and sheet.max_row > 5
    text = files["csv"].decode("utf-8-sig")
    assert text.startswith("变更类型,") and "198.18.7.0/24" in text
    # A certificate for who held 198.18.7.9 on 1 July, downloaded and checked on the page.
    browser.find_element(By.LINK_TEXT, "地址使用证明").click()
    browser.find_element(By.ID, "address").send_keys("198.18.7.9")
    browser.find_element(By.ID, "at").send_keys("2026-07-01 10:00")
    browser.find_element(By.ID, "certificate-issue").click()
    assert "李明" in browser.find_element(By.ID, "certificate-issued").text
    before = {p.name for p in browser.downloads.iterdir()}
    browser.find_element(By.ID, "certificate-json").click()
    cert = downloaded(browser, ".json", before)
    browser.find_element(By.LINK_TEXT, "地址使用证明").click()
    browser.find_element(By.ID, "file").send_keys(str(cert))
    browser.find_element(By.ID, "verify-button").click()
    assert browser.find_element(By.ID, "verdict-result").text == "有效"
    shot(browser, "certificate-verified")


def test_the_header_search_finds_an_address_and_a_customer(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    log_in(browser, server, "engineer", "demo-engineer-pass")
    box = browser.find_element(By.ID, "global-search")
    box.send_keys("198.18.7.9", Keys.ENTER)
    results = browser.find_element(By.ID, "search-results").text
    assert "地址" in results and "198.18.7.9" in results and "李明" in results
    shot(browser, "search-address")
    browser.find_element(By.LINK_TEXT, "198.18.7.9").click()
    assert "李明" in browser.find_element(By.ID, "attribution-sublessee").text
    box = browser.find_element(By.ID, "global-search")
    box.send_keys("星河", Keys.ENTER)
    browser.find_element(By.LINK_TEXT, "上海星河数据服务有限公司").click()
    assert "上海星河" in browser.find_element(By.ID, "customer-name").text
    shot(browser, "search-customer")


def test_engineer_filters_sorts_and_exports_a_list(browser, server):
    import csv
    import re

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, server, "engineer", "demo-engineer-pass")
    browser.find_element(By.LINK_TEXT, "清单").click()
    browser.find_element(By.CSS_SELECTOR, "a[data-list='allocations']").click()
    Select(browser.find_element(By.ID, "f-customer")).select_by_visible_text(
        "北京云帆网络科技有限公司"
    )
    Select(browser.find_element(By.ID, "f-state")).select_by_visible_text("全部")
    browser.find_element(By.ID, "list-show").click()
    browser.find_element(By.CSS_SELECTOR, "a[data-sort='valid_from']").click()
    summary = browser.find_element(By.ID, "list-summary").text
    total = int(re.search(r"共 (\d+) 行", summary).group(1))
    rows = browser.find_elements(By.CSS_SELECTOR, "#list-rows tr")[1:]
    assert total >= 2 and len(rows) == total
    starts = [r.find_elements(By.TAG_NAME, "td")[5].text for r in rows]
    assert starts == sorted(starts)  # oldest first after one click on 开始
    shot(browser, "list-allocations-filtered")
    before = {p.name for p in browser.downloads.iterdir()}
    browser.find_element(By.ID, "list-csv").click()
    path = downloaded(browser, ".csv", before)
    with open(path, encoding="utf-8-sig") as f:
        lines = list(csv.reader(f))
    assert lines[0][:3] == ["编号", "地址段", "客户"] and len(lines) - 1 == total
    assert {line[2] for line in lines[1:]} == {"北京云帆网络科技有限公司"}
    assert [line[5] for line in lines[1:]] == starts  # the file keeps the order on screen


def test_an_address_history_reads_as_a_picture(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    log_in(browser, server, "auditor", "demo-auditor-pass")
    browser.find_element(By.ID, "global-search").send_keys("198.18.7.9", Keys.ENTER)
    browser.find_element(By.LINK_TEXT, "历史").click()
    picture = browser.find_element(By.ID, "timeline")
    assert picture.size["height"] > 100 and picture.get_attribute("role") == "img"
    bars = browser.find_elements(By.CSS_SELECTOR, "#timeline g.span")
    rows = browser.find_elements(By.CSS_SELECTOR, "#history-table tr[data-lane]")
    assert len(bars) == len(rows) >= 3
    table = browser.find_element(By.ID, "history-table").text
    assert "持有方" in table and "李明" in table  # the sublessee of 198.18.7.9
    shot(browser, "history-timeline")
