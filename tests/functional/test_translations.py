"""The Chinese catalogue covers every UI string, and the compiled .mo matches the .po."""

import string
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "web" / "translations" / "zh" / "LC_MESSAGES"
METHODS = [
    ("web/**.py", "python"),
    ("ipam/**.py", "python"),
    ("probes/**.py", "python"),
    ("web/templates/**.html", "jinja2"),
]
# A domain error's first argument is its message id (ipam/errors.py), and so is a Phrase's.
ERRORS = ("ValidationError", "NotFound", "AddressConflict", "PoolExhausted", "StateConflict")
ERRORS += ("MailFailed", "IpamError", "FormatError", "Phrase")
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
KEYWORDS |= {name: (1,) for name in ERRORS}


def _po():
    with open(CATALOG / "messages.po", "rb") as f:
        return read_po(f)


def test_every_ui_string_has_a_chinese_translation():
    po = _po()
    found = {
        msg
        for _, _, msg, _, _ in extract_from_dir(str(ROOT), METHODS, keywords=KEYWORDS)
        if isinstance(msg, str)
    }
    assert len(found) > 100
    untranslated = sorted(m for m in found if m not in po or not po[m].string)
    assert untranslated == [], "run pybabel extract/update and translate these"


def test_compiled_catalogue_matches_the_source():
    po = _po()
    with open(CATALOG / "messages.mo", "rb") as f:
        mo = read_mo(f)
    assert {m.id: m.string for m in po if m.id} == {m.id: m.string for m in mo if m.id}, (
        "recompile: pybabel compile -d web/translations"
    )


def test_every_translated_template_keeps_its_values():
    """A translation that drops or renames a {value} would show the English (or fail)."""
    formatter = string.Formatter()

    def fields(text):
        return sorted((name, conv or "", spec) for _, name, spec, conv in formatter.parse(text)
                      if name is not None)  # fmt: skip

    po = _po()
    templates = [m for m in po if m.id and "{" in m.id and "%(" not in m.id]
    assert len(templates) > 150
    wrong = [(m.id, m.string) for m in templates if fields(m.id) != fields(m.string)]
    assert wrong == []
