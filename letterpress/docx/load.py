"""Reading a template once: its parts compiled, its unchanged members ready to copy.

:func:`load` fills a :class:`~letterpress.docx.template.CompiledTemplate` from a
:class:`~letterpress.docx.package.Package`: the body, headers, footers and footnotes
with tags become :class:`~letterpress.docx.parts.Part` objects; parts without
tags get docxtpl's processing once; every other member is kept as its compressed
bytes, laid out once as the start of every letter's zip.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from jinja2 import TemplateSyntaxError
from lxml import etree

from letterpress.docx import package as dp
from letterpress.docx import sections as ds
from letterpress.docx import zipwriter as dz
from letterpress.docx.images import image_types
from letterpress.docx.locate import SYNTAX_HINT, explain_syntax
from letterpress.docx.parts import Part, post, tables_need_fix
from letterpress.errors import TemplateProblemError, Where
from letterpress.i18n import _

_CORE_PROPS = (("author", "creator"), ("comments", "description"), ("identifier", "identifier"),
               ("language", "language"), ("subject", "subject"), ("title", "title"))
_DC = "{http://purl.org/dc/elements/1.1/}"
_TAGS = re.compile(r"\{[{%#]")


@dataclass(frozen=True)
class Loaded:
    """What reading a template once gives: its parts compiled, its other members ready.

    ``static`` are the zip members copied unchanged into every letter (laid out once as
    ``head``, with their central directory records ``head_cd``); ``header_parts`` the
    headers and footers rendered per letter as (part, rId, type, content type);
    ``part_rels`` the relationships XML of each rendered part; ``optional`` their
    relationship members as in the template (None: the part has none).
    """

    doc_name: str
    stamp: Tuple[int, int]
    body_open: str                 # <w:body ...> with every namespace declaration
    doc_prefix: bytes              # document.xml up to and including <w:body>
    doc_suffix: bytes              # from </w:body> on
    body: Part
    parts: List[Part]              # body, headers, footers, footnotes
    dynamic: List[Part]            # the parts other than the body rendered per letter
    by_name: Dict[str, Part]
    header_parts: List[Tuple[str, str, str, Optional[str]]]
    const_body: Optional[tuple]    # the body's pieces when it has no tags
    core: Optional[tuple]          # document properties with tags: (part, xml, props)
    types_xml: str
    part_rels: Dict[str, Optional[str]]
    optional: Dict[str, Optional[tuple]]
    static: List[tuple]
    head: bytes
    head_cd: bytes
    docpr_start: int
    final_sect: Optional[str]
    break_sect: str
    media_refs: Dict[str, List[Tuple[str, str, str]]]   # member -> [(part, rId, type)] using it
    pictures: Dict[str, List[str]]   # a picture's name, title or description -> its members


def load(tpl, pkg: dp.Package) -> Loaded:
    """Compile ``pkg`` for ``tpl`` (raises :class:`~letterpress.docx.package.NotDocx`)."""
    doc = pkg.doc
    stamp = pkg.stamp
    src, body_open, head, tail = dp.split_body(pkg.blob(doc) or b"")
    doc_prefix, doc_suffix = head + b"<w:body>", b"</w:body>" + tail
    body = Part(tpl, doc, "", src, is_body=True, body_open=body_open)
    body.tree = body.dynamic and tables_need_fix(body_open, src, body.jsrc)
    parts: List[Part] = [body]
    header_parts: list = []
    numbers: Dict[str, int] = {}
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
                if parts[-1].dynamic or parts[-1].has_pictures:
                    parts[-1].renderable = True
                    header_parts.append((target, rid, rt, pkg.overrides.get(target)))
    for target, ctype in pkg.overrides.items():
        blob = pkg.blob(target) if ctype == dp.CT_FOOTNOTES else None
        if blob:
            parts.append(Part(tpl, target, _("footnotes"), blob.decode("utf-8")))
    dynamic = [p for p in parts[1:] if p.dynamic or p.renderable]
    replaced: Dict[str, bytes] = {}
    const_body = None
    for part in parts:   # parts without tags: docxtpl's processing, once
        if not part.dynamic:
            text = post(tpl, part, part.template.render({}))
            part.const = (text,)
            if part is body:
                const_body = (text,)   # the pieces of every letter's body
            elif text != part.source:
                replaced[part.name] = (part.head[0] if part.head else b"") + text.encode("utf-8")
    core = _load_core(tpl, pkg)
    types = pkg.types_xml or ""
    for ctype, ext in image_types().items():   # so that letters may add pictures
        if ext not in pkg.defaults:
            at = types.rindex("</Types>")
            types = types[:at] + f'<Default Extension="{ext}" ContentType="{ctype}"/>' + types[at:]
    replaced["[Content_Types].xml"] = types.encode("utf-8")
    renderable = [body] + dynamic
    part_rels = {p.name: pkg.text(dz.rels_name(p.name)) for p in renderable}
    skip = {p.name for p in renderable} | {dz.rels_name(p.name) for p in renderable}
    if core:
        skip.add(core[0])
    members = {m.name: (m, raw) for m, raw in pkg.members}
    static = [dz.compress(m.name, replaced[m.name], 6, stamp) if m.name in replaced
              else (m, raw) for m, raw in pkg.members if m.name not in skip]
    head_bytes, head_cd = lay_out(static)
    statics = "".join(p.source for p in parts[1:] if not (p.dynamic or p.renderable))
    inner = src[8:-9]
    at = ds.last_sectpr(inner)
    final_sect = inner[at:] if at >= 0 else None
    level = tpl.compresslevel
    body.head = (doc_prefix[:-8], dz.precompress(doc_prefix[:-8], level))
    body.tail = (doc_suffix[9:], dz.precompress(doc_suffix[9:], level))
    for part in renderable:
        part.prepare(tpl, level)
    media_refs, pictures = _media(pkg, parts)
    return Loaded(
        doc_name=doc, stamp=stamp, body_open=body_open, doc_prefix=doc_prefix,
        doc_suffix=doc_suffix, body=body, parts=parts, dynamic=dynamic,
        by_name={p.name: p for p in parts}, header_parts=header_parts, const_body=const_body,
        core=core, types_xml=types, part_rels=part_rels,
        optional={p.name: members.get(dz.rels_name(p.name)) for p in renderable},
        static=static, head=head_bytes, head_cd=head_cd,
        docpr_start=1 + max(map(int, re.findall(r'<wp:docPr\b[^>]*?\sid="(\d+)"', statics)),
                            default=0),
        final_sect=final_sect,
        break_sect=ds.section_break(final_sect, body_open) if final_sect else ds.DEFAULT_BREAK,
        media_refs=media_refs, pictures=pictures)


def lay_out(static: List[tuple]) -> Tuple[bytes, bytes]:
    """The members copied into every letter laid out once: (local records, central ones)."""
    chunks: List[bytes] = []
    cds: List[bytes] = []
    offset = 0
    for member, raw in static:
        cds.append(dz.central_header(member, offset))
        chunks += (dz.local_header(member), raw)
        offset += len(chunks[-2]) + len(raw)
    return b"".join(chunks), b"".join(cds)


_PIC_NS = {"a": "http://schemas.openxmlformats.org/drawingml/2006/main",
           "pic": "http://schemas.openxmlformats.org/drawingml/2006/picture",
           "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships"}


def _media(pkg: dp.Package, parts: List[Part]):
    """Which parts refer to which members (by rId), and the members of each named picture
    (as docxtpl's ``replace_pic`` finds them: by the picture's name, title or description)."""
    refs: Dict[str, List[Tuple[str, str, str]]] = {}
    pictures: Dict[str, List[str]] = {}
    for part in parts:
        if part.name.endswith("footnotes.xml"):
            continue
        targets = {rid: target for rid, _, target, external in pkg.rels(part.name)
                   if not external}
        for rid, reltype, target, external in pkg.rels(part.name):
            if not external:
                refs.setdefault(target, []).append((part.name, rid, reltype))
        if "<pic:" not in part.source:
            continue
        root = etree.fromstring(part.source.encode("utf-8") if not part.is_body
                                else (part.body_open + part.source[8:]).encode("utf-8"))
        for pic in root.iter("{%s}pic" % _PIC_NS["pic"]):
            blips = pic.xpath("pic:blipFill/a:blip/@r:embed", namespaces=_PIC_NS)
            props = pic.find("pic:nvPicPr/pic:cNvPr", _PIC_NS)
            if not blips or props is None or blips[0] not in targets:
                continue
            for key in {props.get("name"), props.get("title"), props.get("descr")} - {None, ""}:
                found = pictures.setdefault(key, [])
                if targets[blips[0]] not in found:
                    found.append(targets[blips[0]])
    return refs, pictures


def _load_core(tpl, pkg: dp.Package) -> Optional[tuple]:
    """Document properties with tags (title, subject, author...), as docxtpl renders them."""
    blob = pkg.blob(pkg.core) if pkg.core else None
    try:
        root = etree.fromstring(blob) if blob else None
    except etree.XMLSyntaxError:
        return None
    props: List[tuple] = []
    if root is None:
        return None
    for prop, tag in _CORE_PROPS:
        element = root.find(_DC + tag)
        if element is not None and element.text and _TAGS.search(element.text):
            label = _("document properties (%(prop)s)", prop=prop)
            try:
                template = tpl._prop_env.from_string(element.text)
            except TemplateSyntaxError as exc:
                raise TemplateProblemError(
                    _("the template's tags are not valid: %(message)s",
                      message=explain_syntax(exc.message or "")), code="template_syntax",
                    where=Where(file=tpl.name, part=label), hint=_(SYNTAX_HINT)) from None
            marker = f"@@letterpress-{len(props)}@@"
            props.append((marker, label, template, element.text))
            element.text = marker
    if not props:
        return None
    xml = etree.tostring(root, encoding="UTF-8", xml_declaration=True, standalone=True)
    return pkg.core, xml.decode("utf-8"), props
