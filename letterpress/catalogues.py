"""Keep the translation catalogues in step with the code (Babel).

    python -m letterpress.catalogues update   extract the messages (locale/babel.cfg) and merge them into
                                        letterpress/locale/<lang>/LC_MESSAGES/letterpress.po:
                                        new ones come in empty, gone ones are dropped
    python -m letterpress.catalogues check    list messages without a translation, fuzzy or stale
                                        entries and translations whose placeholders differ
    python -m letterpress.catalogues fill F   take translations from a JSON file
                                        {"msgid": "译文"} or {"context\\u0004msgid": ...}

``make catalogues`` runs ``update`` then ``check``. The catalogue is written without source
locations, sorted, with a fixed header, so that two branches adding messages merge cleanly.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
import sys
from pathlib import Path
from typing import List, Optional

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

try:
    from babel.messages.frontend import parse_mapping_cfg as _parse_mapping
except ImportError:  # Babel < 2.15
    from babel.messages.frontend import parse_mapping as _parse_mapping  # type: ignore[attr-defined,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "letterpress" / "locale"
DOMAIN = "letterpress"
LANGS = ("zh",)
#: {fields} (Click's messages) and {{ template fields }}: a translation keeps them as they are.
BRACES = re.compile(r"\{\{[^{}]*\}\}|\{[^{}]*\}")
FIXED_DATE = _dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)
WIDTH = 100


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> Catalog:
    """Every message marked in the code and the page templates, as a template catalogue."""
    with open(LOCALE / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = _parse_mapping(fh)
    template = Catalog(project="letterpress", domain=DOMAIN, charset="utf-8",
                       creation_date=FIXED_DATE)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, strip_comment_tags=True):
        template.add(message, None, [(filename, lineno)], auto_comments=comments,
                     context=context)
    return template


def read(lang: str) -> Catalog:
    path = po_path(lang)
    if not path.is_file():
        return Catalog(locale=lang, domain=DOMAIN, project="letterpress", charset="utf-8")
    with open(path, "rb") as fh:
        return read_po(fh, locale=lang, domain=DOMAIN)


def write(lang: str, catalog: Catalog) -> None:
    catalog.creation_date = FIXED_DATE
    catalog.revision_date = FIXED_DATE
    catalog.project, catalog.version = "letterpress", "1"
    catalog.msgid_bugs_address = ""
    catalog.last_translator = "letterpress"
    catalog.language_team = "letterpress"
    catalog.fuzzy = False
    catalog.header_comment = (f"# {catalog.locale} translations of letterpress's messages.\n"
                              "# Made with `make catalogues`; see README, Languages.")
    path = po_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".po.tmp")
    with open(tmp, "wb") as fh:
        write_po(fh, catalog, width=WIDTH, no_location=True, sort_output=True,
                 ignore_obsolete=True, include_previous=False)
    tmp.replace(path)


def update() -> None:
    template = extract()
    for lang in LANGS:
        catalog = read(lang)
        catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
        catalog.obsolete.clear()
        write(lang, catalog)


def _key(msg) -> str:
    msgid = msg.id[0] if isinstance(msg.id, (list, tuple)) else msg.id
    return f"{msg.context}\x04{msgid}" if msg.context else str(msgid)


def problems(template: Optional[Catalog] = None) -> List[str]:
    """What is wrong with the catalogues: untranslated, fuzzy, stale, wrong placeholders."""
    template = template if template is not None else extract()
    found = []
    for lang in LANGS:
        catalog = read(lang)
        for msg in template:
            if not msg.id:
                continue
            entry = catalog.get(msg.id, context=msg.context)
            label = f"{lang}: {_key(msg)!r}"
            if entry is None:
                found.append(f"{label} is not in the catalogue (run make catalogues)")
                continue
            strings = entry.string if isinstance(entry.string, (list, tuple)) else [entry.string]
            if not all(strings):
                found.append(f"{label} has no translation")
            if entry.fuzzy:
                found.append(f"{label} is marked fuzzy")
            if isinstance(msg.id, (list, tuple)) and not all(msg.id):
                found.append(f"en: {_key(msg)!r} lacks its English plural")
        for entry in catalog:
            if entry.id and template.get(entry.id, context=entry.context) is None:
                found.append(f"{lang}: {_key(entry)!r} is stale (no longer in the code)")
        for entry in catalog:
            if not entry.id or not entry.string:
                continue
            ids = entry.id if isinstance(entry.id, (list, tuple)) else [entry.id]
            strings = entry.string if isinstance(entry.string, (list, tuple)) else [entry.string]
            fields = set(BRACES.findall(ids[-1])) | set(BRACES.findall(ids[0]))
            for string in strings:
                if string and not set(BRACES.findall(string)) <= fields:
                    found.append(f"{lang}: {_key(entry)!r}: the translation's {{fields}} are not "
                                 "the English ones")
        for entry, errors in catalog.check():
            for err in errors:
                found.append(f"{lang}: {_key(entry)!r}: {err}")
    return found


def fill(path: Path) -> None:
    with open(path, encoding="utf-8") as fh:
        texts = json.load(fh)
    for lang in LANGS:
        catalog = read(lang)
        for entry in catalog:
            key = _key(entry)
            if key in texts:
                value = texts[key]
                entry.string = tuple(value) if isinstance(entry.id, (list, tuple)) and \
                    isinstance(value, list) else value
                entry.flags.discard("fuzzy")
        write(lang, catalog)


def main(argv: List[str]) -> int:
    if argv[:1] == ["update"]:
        update()
        return 0
    if argv[:1] == ["fill"] and len(argv) == 2:
        fill(Path(argv[1]))
        return 0
    if argv[:1] == ["check"]:
        found = problems()
        for line in found:
            print(line)
        print(f"{len(found)} problem(s) in the catalogues" if found else "catalogues complete")
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
