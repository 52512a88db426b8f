"""Reading a template once: its parts compiled, its unchanged members ready to copy.

:func:`load` fills a :class:`~letterpress.docx.template.CompiledTemplate` from a
:class:`~letterpress.docx.package.Package`: the body, headers, footers and footnotes
with tags become :class:`~letterpress.docx.parts.Part` objects; parts without
tags get docxtpl's processing once; every other member is kept as its compressed
bytes, laid out once as the start of every letter's zip.
"""
from __future__ import annotations

import re
from typing import Dict

from jinja2 import TemplateSyntaxError
from lxml import etree

from letterpress.docx import package as dp
from letterpress.docx import sections as ds
from letterpress.docx import zipwriter as dz
from letterpress.docx.images import image_types
from letterpress.docx.locate import SYNTAX_HINT
from letterpress.docx.parts import Part, post, tables_need_fix
from letterpress.errors import TemplateProblemError, Where
from letterpress.i18n import _

_CORE_PROPS = (("author", "creator"), ("comments", "description"), ("identifier", "identifier"),
               ("language", "language"), ("subject", "subject"), ("title", "title"))
_DC = "{http://purl.org/dc/elements/1.1/}"
_TAGS = re.compile(r"\{[{%#]")


def load(tpl, pkg: dp.Package) -> None:
    """Compile ``pkg`` into ``tpl`` (raises :class:`~letterpress.docx.package.NotDocx`)."""
    doc = tpl._doc_name = pkg.doc
    tpl._stamp = stamp = pkg.stamp
    src, tpl._body_open, head, tail = dp.split_body(pkg.blob(doc))
    tpl._doc_prefix, tpl._doc_suffix = head + b"<w:body>", b"</w:body>" + tail
    body = tpl._body = Part(tpl, doc, "", src, is_body=True)
    body.tree = body.dynamic and tables_need_fix(tpl._body_open, src, body.jsrc)
    parts, tpl._header_parts, numbers = [body], [], {}
    for kind, reltype in (("header", dp.RT_HEADER), ("footer", dp.RT_FOOTER)):
        for rid, rt, target, external in pkg.rels(doc):
            blob = None if external or rt != reltype else pkg.blob(target)
            if blob and target not in {p.name for p in parts}:
                numbers[kind] = numbers.get(kind, 0) + 1
                found = re.search(r"(\d+)\.xml$", target)
                number = found.group(1) if found else numbers[kind]
                label = _("header %(number)s", number=number) if kind == "header" \
                    else _("footer %(number)s", number=number)
                parts.append(Part(tpl, target, label, dp.reserialize(blob), dp.XML_DECL))
                if parts[-1].dynamic:
                    tpl._header_parts.append((target, rid, rt, pkg.overrides.get(target)))
    for target, ctype in pkg.overrides.items():
        blob = pkg.blob(target) if ctype == dp.CT_FOOTNOTES else None
        if blob:
            parts.append(Part(tpl, target, _("footnotes"), blob.decode("utf-8")))
    tpl._parts, tpl._dynamic = parts, [p for p in parts[1:] if p.dynamic]
    replaced: Dict[str, bytes] = {}
    for part in parts:   # parts without tags: docxtpl's processing, once
        if not part.dynamic:
            text = post(tpl, part, part.template.render({}))
            if part is body:
                tpl._const_body = (text,)   # the pieces of every letter's body
            elif text != part.source:
                replaced[part.name] = (part.head[0] if part.head else b"") + text.encode("utf-8")
    tpl._core = _load_core(tpl, pkg)
    types = pkg.types_xml
    for ctype, ext in image_types().items():   # so that letters may add pictures
        if ext not in pkg.defaults:
            at = types.rindex("</Types>")
            types = types[:at] + f'<Default Extension="{ext}" ContentType="{ctype}"/>' + types[at:]
    tpl._types_xml, replaced["[Content_Types].xml"] = types, types.encode("utf-8")
    renderable = [body] + tpl._dynamic
    tpl._part_rels = {p.name: pkg.text(dz.rels_name(p.name)) for p in renderable}
    skip = {p.name for p in renderable} | {dz.rels_name(p.name) for p in renderable}
    if tpl._core:
        skip.add(tpl._core[0])
    members = {m.name: (m, raw) for m, raw in pkg.members}
    tpl._optional = {p.name: members.get(dz.rels_name(p.name)) for p in renderable}
    tpl._static = [dz.compress(m.name, replaced[m.name], 6, stamp) if m.name in replaced
                   else (m, raw) for m, raw in pkg.members if m.name not in skip]
    chunks, cds, offset = [], [], 0
    for member, raw in tpl._static:
        cds.append(dz.central_header(member, offset))
        chunks += (dz.local_header(member), raw)
        offset += len(chunks[-2]) + len(raw)
    tpl._head, tpl._head_cd = b"".join(chunks), b"".join(cds)
    statics = "".join(p.source for p in parts[1:] if not p.dynamic)
    tpl._docpr_start = 1 + max(map(int, re.findall(r'<wp:docPr\b[^>]*?\sid="(\d+)"', statics)),
                               default=0)
    inner = src[8:-9]
    at = ds.last_sectpr(inner)
    tpl._final_sect = inner[at:] if at >= 0 else None
    tpl._break_sect = (ds.section_break(tpl._final_sect, tpl._body_open) if at >= 0
                       else ds.DEFAULT_BREAK)
    level = tpl.compresslevel
    body.head = (tpl._doc_prefix[:-8], dz.precompress(tpl._doc_prefix[:-8], level))
    body.tail = (tpl._doc_suffix[9:], dz.precompress(tpl._doc_suffix[9:], level))
    for part in renderable:
        part.prepare(tpl, level)


def _load_core(tpl, pkg: dp.Package):
    """Document properties with tags (title, subject, author...), as docxtpl renders them."""
    blob = pkg.blob(pkg.core) if pkg.core else None
    try:
        root = etree.fromstring(blob) if blob else None
    except etree.XMLSyntaxError:
        return None
    props = []
    for prop, tag in _CORE_PROPS if root is not None else ():
        element = root.find(_DC + tag)
        if element is not None and element.text and _TAGS.search(element.text):
            label = _("document properties (%(prop)s)", prop=prop)
            try:
                template = tpl._prop_env.from_string(element.text)
            except TemplateSyntaxError as exc:
                raise TemplateProblemError(
                    _("the template's tags are not valid: %(message)s", message=exc.message), code="template_syntax",
                    where=Where(file=tpl.name, part=label), hint=_(SYNTAX_HINT)) from None
            marker = f"@@letterpress-{len(props)}@@"
            props.append((marker, label, template, element.text))
            element.text = marker
    if not props:
        return None
    xml = etree.tostring(root, encoding="UTF-8", xml_declaration=True, standalone=True)
    return pkg.core, xml.decode("utf-8"), props
