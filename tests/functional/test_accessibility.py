"""Every page passes axe-core's WCAG 2.1 A/AA rules in headless Chromium, as every role.

The check crawls what each role can reach from the dashboard by following links
(one page per route shape: /customers/1 stands for /customers/N), runs axe-core
on it and fails on any serious or critical violation: contrast, labels, names of
buttons and links, landmarks, language. The pages walked are saved as screenshots
(test-artifacts/a11y-ROLE-*.png).
"""

from __future__ import annotations

import re
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

from tests.functional.test_browser import ARTIFACTS, browser, log_in, server  # noqa: F401

ROLES = {
    "engineer": "demo-engineer-pass",
    "yunfan": "demo-customer-pass",
    "auditor": "demo-auditor-pass",
    "admin": "demo-admin-pass",
}
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
LEAVE = ("/logout", "/lang/", "/export", "/download", "/api/", "/static/")
MAX_PAGES = 60


def shape(url: str) -> str:
    """A route's shape: ids become N, the query's values are dropped."""
    parts = urlparse(url)
    path = re.sub(r"/\d+", "/N", parts.path)
    keys = sorted(k.split("=")[0] for k in parts.query.split("&") if k)
    return path + ("?" + "&".join(keys) if keys else "")


def crawl(driver, base):
    """The role's pages, reached from the dashboard by links, one per route shape."""
    from selenium.webdriver.common.by import By

    todo, seen, pages = [base + "/"], set(), []
    while todo and len(pages) < MAX_PAGES:
        url = todo.pop(0)
        if shape(url) in seen:
            continue
        seen.add(shape(url))
        driver.get(url)
        pages.append(url)
        yield url
        for link in driver.find_elements(By.CSS_SELECTOR, "a[href]"):
            href = urldefrag(urljoin(url, link.get_attribute("href") or ""))[0]
            if href.startswith(base) and not any(part in href for part in LEAVE):
                if shape(href) not in seen:
                    todo.append(href)


def serious(results: dict) -> list[str]:
    out = []
    for v in results["violations"]:
        if v.get("impact") in ("serious", "critical"):
            where = [" ".join(n["target"]) if isinstance(n["target"], list) else str(n["target"])
                     for n in v["nodes"][:3]]  # fmt: skip
            out.append(f"{v['id']} ({v['impact']}): {v['help']} at {where}")
    return out


@pytest.mark.parametrize("username", list(ROLES))
def test_every_page_passes_axe_core_as_every_role(browser, server, username):  # noqa: F811
    from axe_core_python.selenium import Axe

    axe = Axe()
    log_in(browser, server, username, ROLES[username])
    problems, walked = {}, []
    for i, url in enumerate(crawl(browser, server)):
        walked.append(url)
        found = serious(axe.run(browser, options=WCAG))
        if found:
            problems[url.removeprefix(server)] = found
        if i < 25:
            browser.save_screenshot(str(ARTIFACTS / f"a11y-{username}-{i:02d}.png"))
    assert len(walked) >= 8, walked
    assert problems == {}, problems


def test_axe_core_finds_what_it_should(browser, server):  # noqa: F811
    """The check itself: a page with a low-contrast, unlabelled input fails it."""
    from axe_core_python.selenium import Axe

    browser.get(server + "/login")
    browser.execute_script(
        "document.body.insertAdjacentHTML('beforeend',"
        '\'<p style="color:#bbb;background:#fff">faint words</p><input id="nolabel">\')'
    )
    found = serious(Axe().run(browser, options=WCAG))
    assert any(f.startswith("color-contrast") for f in found), found
    assert any(f.startswith("label") for f in found), found
