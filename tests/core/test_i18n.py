"""Translations: per-visitor language, a complete and current Chinese catalog, consistent terminology."""

from __future__ import annotations

import csv
import gettext
import io
import re
import threading
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from core import i18n

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locales" / "zh_CN" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")


def _catalog():
    with open(PO, "rb") as f:
        return read_po(f)


def _extracted() -> set:
    """Every message id in the code, as `make i18n` extracts it (babel.cfg)."""
    method_map = [("app.py", "python"), ("pages/**.py", "python"), ("ui/**.py", "python"), ("core/**.py", "python")]
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map=method_map):
        ids.add(message if isinstance(message, str) else tuple(message))
    return ids


def test_each_thread_has_its_own_language_so_two_visitors_never_share_one():
    seen = {}
    barrier = threading.Barrier(2)

    def visit(code):
        i18n.set_language(code)
        barrier.wait()  # both languages are set before either reads
        seen[code] = i18n._("Train")

    threads = [threading.Thread(target=visit, args=(code,)) for code in ("en", "zh")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"en": "Train", "zh": "训练"}
    assert i18n.language() == "en"  # this thread was never set: English


@pytest.mark.parametrize("header, code", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("en-US,en;q=0.9,zh-CN;q=0.8", "en"), ("fr-FR,zh;q=0.5", "zh"),
    ("de,fr", "en"), ("", "en"), (None, "en"), ("en;q=0.2,zh;q=0.9", "zh"), ("zh-Hans", "zh"),
])
def test_the_browser_language_picks_the_start_language(header, code):
    assert i18n.best_match(header) == code


def test_every_message_in_the_code_has_a_chinese_translation_and_none_is_stale():
    catalog = _catalog()
    in_po = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalog if m.id}
    in_code = _extracted()
    missing = sorted(str(m) for m in in_code - set(in_po))
    assert not missing, f"{len(missing)} messages are not in the catalog (run make i18n): {missing[:10]}"
    stale = sorted(str(m) for m in set(in_po) - in_code)
    assert not stale, f"{len(stale)} catalog entries are no longer in the code (run make i18n): {stale[:10]}"
    untranslated = [str(k) for k, m in in_po.items()
                    if m.fuzzy or not (m.string if isinstance(m.string, str) else all(m.string))]
    assert not untranslated, f"{len(untranslated)} messages lack a Chinese translation: {untranslated[:10]}"


def test_the_compiled_catalog_matches_the_translations():
    buf = io.BytesIO()
    write_mo(buf, _catalog())
    fresh = gettext.GNUTranslations(io.BytesIO(buf.getvalue()))
    with open(MO, "rb") as f:
        committed = gettext.GNUTranslations(f)
    assert committed._catalog == fresh._catalog, "locales/…/messages.mo is out of date: run make i18n"


def test_placeholders_survive_translation():
    for message in _catalog():
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        fields = set(re.findall(r"\{[^{}]*\}", ids[0]))
        for text in strings:
            assert set(re.findall(r"\{[^{}]*\}", text)) == fields, (message.id, text)


def test_translations_use_the_glossary_terms():
    with open(ROOT / "docs" / "glossary.csv", encoding="utf-8") as f:
        terms = [row for row in csv.DictReader(f) if row["checked"] == "yes"]
    wrong = []
    for message in _catalog():
        if not message.id or not isinstance(message.id, str):
            continue
        for row in terms:
            if re.search(rf"\b{re.escape(row['en'])}\b", message.id, re.IGNORECASE) and row["zh"] not in message.string:
                wrong.append(f"{message.id!r}: '{row['en']}' should read {row['zh']} in {message.string!r}")
    assert not wrong, "\n".join(wrong[:20])


def test_a_thread_never_given_a_language_asks_the_resolver_then_falls_back_to_english():
    """Streamlit runs widget callbacks and fragment reruns in threads app.py's start-of-run code never saw:
    the UI's resolver answers with the visitor's language there."""
    seen = []

    def read():
        seen.append(i18n._("Train"))
        with i18n.language_of("en"):
            seen.append(i18n._("Train"))
        seen.append(i18n._("Train"))

    before = i18n._resolver  # the UI's, when an AppTest in this process imported it: put back afterwards
    try:
        for resolver in (lambda: "zh", None):
            i18n.set_resolver(resolver)
            t = threading.Thread(target=read)
            t.start()
            t.join()
    finally:
        i18n.set_resolver(before)
    assert seen == ["训练", "Train", "训练", "Train", "Train", "Train"]
