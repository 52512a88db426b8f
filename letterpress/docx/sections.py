"""Section properties and drawing ids in body XML, for putting many letters in one document.

Word ends a section with its section properties (``<w:sectPr>``) in the section's
last paragraph; the last section's are the body's last child. These helpers find
them, turn them into a "next page" section break and renumber drawing ids, on
the XML text, without parsing a whole letter.
"""
from __future__ import annotations

import re
from typing import Optional, Tuple

from lxml import etree

from letterpress.docx.package import W_NS

DEFAULT_BREAK = '<w:sectPr><w:type w:val="nextPage"/></w:sectPr>'
_SECT = re.compile(r"<w:sectPr(?=[ >/])[^>]*?(/?)>|</w:sectPr>")
_DOCPR = re.compile(r'(<wp:docPr\b[^>]*?\sid=")[^"]*(")')
RID = re.compile(r'(r:\w+=")([^"]+)(")')


def last_sectpr(xml: str) -> int:
    """Where the section properties ending ``xml`` (a body's content) start, or -1."""
    depth = 0
    for m in reversed(list(_SECT.finditer(xml)) if xml.endswith("</w:sectPr>") else []):
        depth += 1 if m.group(0) == "</w:sectPr>" else (0 if m.group(1) else -1)
        if depth == 0:
            return m.start()
    return -1


def section_break(sectpr: str, body_open: str) -> str:
    """``sectpr`` as a section starting on a new page (``<w:type w:val="nextPage"/>``)."""
    w = f"{{{W_NS}}}"
    sect = etree.fromstring(body_open + sectpr + "</w:body>")[0]
    for old in sect.findall(w + "type"):
        sect.remove(old)
    first = ("headerReference", "footerReference", "footnotePr", "endnotePr")
    at = max((i + 1 for i, c in enumerate(sect) if str(c.tag)[len(w):] in first), default=0)
    sect.insert(at, etree.Element(w + "type", {w + "val": "nextPage"}))
    head, rest = etree.tostring(sect, encoding="unicode").split(">", 1)
    return re.sub(r'\sxmlns:\w+="[^"]*"', "", head) + ">" + rest


def renumber_docpr(xml: str, start: int) -> Tuple[str, int]:
    """Every ``wp:docPr`` in ``xml`` numbered from ``start`` on; returns the next free id."""
    count = iter(range(start, 1 << 31))
    xml = _DOCPR.sub(lambda m: f"{m.group(1)}{next(count)}{m.group(2)}", xml)
    return xml, next(count)


def remap_rids(xml: str, mapping) -> str:
    """Relationship ids (``r:id="rId5"``, ``r:embed=...``) in ``xml`` renamed by ``mapping``."""
    if not mapping:
        return xml
    return RID.sub(lambda m: m.group(1) + mapping.get(m.group(2), m.group(2)) + m.group(3), xml)


def last_paragraph(content: str) -> Optional[int]:
    """Where the last top-level paragraph of ``content`` starts: ``len(content)`` when the
    content does not end with a paragraph, None when its start is not in ``content``."""
    end = len(content.rstrip())
    if not content.endswith("</w:p>", 0, end):
        return len(content)
    depth, i = 1, end - 6
    while depth:
        close = content.rfind("</w:p>", 0, i)
        start = max(content.rfind("<w:p>", 0, i), content.rfind("<w:p ", 0, i))
        if start < 0:
            return None
        depth, i = (depth - 1, start) if start > close else (depth + 1, close)
    return i


def end_section(paragraph: str, sectpr: str) -> str:
    """A letter's last paragraph holding ``sectpr`` (as Word ends a section), or a new
    empty paragraph holding it when ``paragraph`` is not one."""
    if paragraph.startswith(("<w:p>", "<w:p ")):
        tag_end = paragraph.index(">") + 1
        if paragraph.startswith("<w:pPr/>", tag_end):
            return f"{paragraph[:tag_end]}<w:pPr>{sectpr}</w:pPr>{paragraph[tag_end + 8:]}"
        if not paragraph.startswith(("<w:pPr>", "<w:pPr "), tag_end):
            return f"{paragraph[:tag_end]}<w:pPr>{sectpr}</w:pPr>{paragraph[tag_end:]}"
        close = paragraph.find("</w:pPr>", tag_end)
        change = paragraph.find("<w:pPrChange", tag_end, close)
        if "<w:sectPr" not in paragraph[tag_end:close]:
            at = change if change >= 0 else close
            return paragraph[:at] + sectpr + paragraph[at:]
    return f"{paragraph}<w:p><w:pPr>{sectpr}</w:pPr></w:p>"
