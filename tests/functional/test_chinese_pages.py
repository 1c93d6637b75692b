"""A Chinese user meets no English sentence: every page, as every role, read for English.

Walks every page the access matrix lists (and the error pages), takes the text a
person reads (and the titles, labels and placeholders a screen reader speaks) and
looks for three or more English words in a row. Words people typed into the world
(names, complaints, comments) are theirs and are not counted; neither are the
technical terms kept in their own script (protocols, formats, codes).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ipam.models import Base
from tests.functional.test_access_matrix import MATRIX, USERS, _fill

# Three English words in a row (two letters or more each), the mark of a sentence.
SENTENCE = re.compile(r"[A-Za-z][a-z]+(?:[ ,'-]+[a-z]{2,}){2,}")
SKIPPED = {"script", "style", "code", "pre", "textarea"}  # code and what a person typed
SPOKEN = ("title", "placeholder", "aria-label", "alt")


class Reader(HTMLParser):
    """The text of a page as a person (or a screen reader) meets it."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED:
            self.skipping += 1
        for name, value in attrs:
            if name in SPOKEN and value:
                self.parts.append(value)
            if name == "value" and dict(attrs).get("type") in ("submit", "button"):
                self.parts.append(value or "")

    def handle_endtag(self, tag):
        if tag in SKIPPED and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def text_of(html: str) -> list[str]:
    reader = Reader()
    reader.feed(html)
    return [" ".join(part.split()) for part in reader.parts if part.strip()]


def typed_words(engine) -> str:
    """Every text value the database holds: what people typed is shown as they typed it."""
    values: list[str] = []
    with Session(engine) as s:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if str(c.type).startswith(("VARCHAR", "TEXT"))]
            if not columns:
                continue
            phrase = table.columns.get("phrase")
            query = select(*columns, phrase) if phrase is not None else select(*columns)
            for row in s.execute(query):
                if phrase is not None and isinstance(row[-1], dict):
                    # What the system wrote is no one's typing, but the values in it may be.
                    values.extend(_values_of(row[-1]))
                    continue
                values.extend(str(v) for v in row if v and not isinstance(v, dict))
    return "\n".join(values)


def _values_of(phrase) -> list[str]:
    if not isinstance(phrase, dict):
        return []
    out = []
    for value in (phrase.get("p") or {}).values():
        out.extend(_values_of(value) if isinstance(value, dict) else [str(value)])
    return out


def english_in(text: str, typed: str) -> list[str]:
    return [m for m in SENTENCE.findall(text) if m not in typed]


@pytest.mark.parametrize("who", ["engineer", "auditor", "A", "admin"])
def test_no_page_speaks_english_to_a_chinese_user(login, world, engine, who):
    typed = typed_words(engine)
    client = login(USERS[who])
    urls = ["/no-such-page", _fill("/abuse/cases/{a_case}", world).replace("cases/", "cases/9")]
    for method, url, _endpoint, allowed, _body in MATRIX:
        if method != "GET" or url.startswith(("/api/", "/lang/")):
            continue  # the API speaks JSON; /lang/en is the way to English
        if allowed != "public" and who not in allowed:
            continue
        urls.append(_fill(url, world))
    found = {}
    seen = 0
    for url in urls:
        response = client.get(url)
        if response.status_code in (301, 302, 303) or not response.content_type.startswith(
            "text/html"
        ):
            response.close()
            continue
        seen += 1
        for part in text_of(response.get_data(as_text=True)):
            english = english_in(part, typed)
            if english:
                found.setdefault(url, []).extend(english)
        response.close()
    assert seen >= 15
    assert found == {}, f"{who} meets English: {found}"


def test_the_reader_finds_english_where_there_is_some():
    page = "<p>地址</p><p title='the address is not valid'>x</p><code>show run all</code>"
    assert english_in(" ".join(text_of(page)), "") == ["the address is not valid"]
    assert english_in("198.18.0.0/24 · IPv4 · 2026-01-01 08:00", "") == []
