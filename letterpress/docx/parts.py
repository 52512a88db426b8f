"""The XML parts of a template that are rendered per letter: the body, headers, footers.

A :class:`Part` is patched as docxtpl patches it and compiled to one Jinja template,
once. The constant pieces of its compiled code (the XML between the tags) are
deflated once too, so a letter's part is written as those ready pieces joined
with the values between them (:meth:`Part.assemble`); only what needs docxtpl's
post-processing (line breaks in values, pictures, repaired tables) is handled as
whole text (:func:`post`). A part that uses only plain values (text, numbers) equal
to the previous letter's is not rendered again (:meth:`Part.memo`).
"""
from __future__ import annotations

import re
import struct
import zlib
from typing import Any, List, Optional, Sequence, Tuple

import markupsafe
from jinja2 import TemplateSyntaxError, meta
from lxml import etree

from letterpress.docx import docxtpl_rules as docxtpl
from letterpress.docx import zipwriter as dz
from letterpress.docx.locate import SYNTAX_HINT, describe, explain_syntax
from letterpress.docx.sections import renumber_docpr
from letterpress.i18n import _

_PARA = re.compile(r"<w:p([ >])")
_TAGS = re.compile(r"\{[{%#]")
_BAD_CHARS = re.compile("[\x00-\x06\x08\x0b\x0e-\x1f\ufffe\uffff]")  # not allowed in XML
#: Output that needs docxtpl's post-processing (the body also renumbers pictures: docPr).
SPECIAL = ("\n", "\t", "\a", "\f", "{_", "_}")
_BODY_SPECIAL = SPECIAL + ("docPr",)
_PLAIN = frozenset({str, int, float, bool, type(None)})
_STORED = struct.Struct("<BHH")   # a deflate "stored" block's header: not final, length
#: The escaping inside ``markupsafe.escape`` (None: leave Jinja's escaping as it is).
_escape_inner: Any = getattr(markupsafe, "_escape_inner", None)
_PACK_FROM = 200     # constant pieces this long or longer are deflated once; shorter ones join text


def _output_escape(value: Any) -> Any:
    """markupsafe's ``escape`` for what ``{{ }}`` writes into a letter: the same text, but a
    plain string is not wrapped in ``Markup`` (Jinja wraps what it joins itself)."""
    if type(value) is str:
        return _escape_inner(value)
    return markupsafe.escape(value)


def finalize(value: Any) -> Any:
    """Drop characters XML cannot hold (a stray control character from a spreadsheet)."""
    if type(value) is str and _BAD_CHARS.search(value):
        return _BAD_CHARS.sub("", value)
    return value


class Part:
    """One XML part rendered per letter.

    ``head`` and ``tail`` are the bytes written before and after the rendered text
    (the XML declaration; for the body, the document around ``<w:body>``) as
    (plain, deflated or None). ``pieces`` of a rendering are strings and numbers
    standing for :attr:`chunks` (text, plain bytes, deflated bytes or None).
    """

    def __init__(self, tpl, name: str, label: str, source: str, decl: bytes = b"",
                 is_body: bool = False, body_open: str = "") -> None:
        self.name, self.label, self.source, self.is_body = name, label, source, is_body
        self.body_open = body_open   # the body's start tag, with its namespaces
        self.head: Optional[Tuple[bytes, Optional[bytes]]] = (decl, None) if decl else None
        self.tail: Optional[Tuple[bytes, Optional[bytes]]] = None
        patched = unescape_tags(docxtpl.patch(source))
        self.dynamic = bool(_TAGS.search(patched))
        #: rendered per letter although it has no tags: a header or footer with a picture,
        #: which a letter may replace (see CompiledTemplate.replace_pic)
        self.renderable = False
        self.has_pictures = "r:embed=" in source or "r:id=" in source
        self.const: Optional[tuple] = None   # the pieces of a part without tags
        self.jsrc = _PARA.sub(r"\n<w:p\1", patched)   # docxtpl's trick: one line per paragraph
        self.checked = self.tree = False
        self.next_id = 1 + max(map(int, re.findall(r'\sid="(\d+)"', source)), default=0)
        self.chunks: List[tuple] = []
        self.vars: Optional[Tuple[str, ...]] = None   # the fields, when memo() may be used
        self._chunk_of: dict = {}
        self._keep: list = []
        self._texts: List[str] = []
        self._items: List[tuple] = []
        self._kinds: List[int] = []
        self._special: Tuple[str, ...] = SPECIAL
        self.has_docpr = "docPr" in source   # a picture: its drawing id numbered per copy
        self._last: Optional[tuple] = None
        self._marks: Optional[list] = None   # paragraph numbers by line (render_locate)
        self._ast: Any = None
        try:
            self.template = tpl._env.from_string(self.jsrc)
        except TemplateSyntaxError as exc:
            raise tpl._problem("template_syntax", self, exc.lineno,
                               _("the template's tags are not valid: %(message)s",
                                 message=explain_syntax(exc.message or "")),
                               _(SYNTAX_HINT)) from None
        code = self.template.root_render_func.__globals__   # this template's own namespace
        if _escape_inner is not None and code.get("escape") is markupsafe.escape:
            code["escape"] = _output_escape

    def parsed(self, env) -> Any:
        """The Jinja syntax tree of the part (parsed once; for the fields it uses)."""
        if self._ast is None:
            self._ast = env.parse(self.jsrc)
        return self._ast

    def describe(self, lineno: Optional[int], focus: Optional[str] = None) -> Tuple[str, str]:
        """("header 1, paragraph 2", its text) for a line of the Jinja source."""
        return describe(self, lineno, focus)

    # -- compiled once ------------------------------------------------------------------
    def prepare(self, tpl, level: int) -> None:
        """Deflate, once, every constant piece of the compiled Jinja code (after docxtpl's
        newline removal), so that most of a letter's part is copied, not compressed."""
        if not self.dynamic or self.tree:
            return
        if not self.is_body and not tpl.jinja:
            self.vars = tuple(sorted(meta.find_undeclared_variables(self.parsed(tpl._env))))

        def strings(code):
            for const in code.co_consts:
                if isinstance(const, str):
                    yield const
                elif hasattr(const, "co_consts"):
                    yield from strings(const)
        template = self.template
        codes = [template.root_render_func.__code__]
        codes += [f.__code__ for f in template.blocks.values()]
        found = {id(s): s for code in codes for s in strings(code)}
        order = {s: i for i, s in enumerate(sorted(set(found.values())))}  # same in every process
        special_marks = _BODY_SPECIAL if self.is_body else SPECIAL
        for s in sorted(order, key=order.__getitem__):
            text = s.replace("\n<w:p ", "<w:p ").replace("\n<w:p>", "<w:p>")
            special, plain = any(x in text for x in special_marks), text.encode("utf-8")
            packed = dz.precompress(plain, level) if len(plain) >= _PACK_FROM and not special \
                else None
            self.chunks.append((text, plain, packed, special))
        self._chunk_of = {i: order[s] for i, s in found.items()}
        self._keep = list(found.values())   # the ids above stay valid while these live
        self._texts = [c[0] for c in self.chunks]
        self._items = [c[1:3] for c in self.chunks]
        self._kinds = [2 if c[3] else 0 if c[2] is None else 1 for c in self.chunks]
        self.has_docpr = any("docPr" in text for text in self._texts)
        self._special = special_marks

    # -- per letter ---------------------------------------------------------------------
    def memo(self, ctx: dict) -> Tuple[Optional[tuple], Optional[tuple]]:
        """(key, pieces): the pieces of the previous letter when this one's values are the
        same plain values; a key to :meth:`remember` this letter's by otherwise."""
        if self.vars is None or not self.checked:
            return None, None
        try:
            key = tuple([ctx[name] for name in self.vars])
        except KeyError:
            return None, None
        for value in key:
            if type(value) not in _PLAIN:
                return None, None
        last = self._last
        if last is not None and last[0] == key and all(
                type(a) is type(b) for a, b in zip(last[0], key)):
            return key, last[1]
        return key, None

    def remember(self, key: Optional[tuple], pieces: tuple) -> None:
        if key is not None:
            self._last = (key, pieces)

    def assemble(self, strings: Sequence[str]) -> Optional[Tuple[tuple, str]]:
        """(pieces, the values' text) from the strings Jinja rendered, when nothing in them
        needs post-processing; None otherwise (then :func:`post` takes the whole text)."""
        if not self.checked or self.tree or not self.chunks:
            return None
        out: list = []
        lit: List[str] = []
        dyn: List[str] = []
        get, kinds, texts = self._chunk_of.get, self._kinds, self._texts
        for s in strings:
            k = get(id(s))
            if k is None:
                dyn.append(s)
                lit.append(s)
            elif kinds[k] == 1:     # deflated once: referred to by number
                if lit:
                    out.append("".join(lit))
                    lit = []
                out.append(k)
            elif kinds[k] == 0:     # short: joins the text around it
                lit.append(texts[k])
            else:                   # needs docxtpl's post-processing
                return None
        values = "".join(dyn)
        for mark in self._special:
            if mark in values:
                return None
        if lit:
            out.append("".join(lit))
        return tuple(out), values

    def text(self, pieces: tuple) -> str:
        """The rendered XML text of ``pieces``."""
        texts = self._texts
        return "".join([texts[p] if p.__class__ is int else p for p in pieces])

    def member(self, pieces: tuple, level: int, stamp: Tuple[int, int],
               name: Optional[str] = None) -> Tuple[dz.Member, bytes]:
        """The zip member of a rendering (named ``name``, by default the part's own): its
        ready pieces joined, or its text compressed."""
        head, tail, name = self.head, self.tail, name or self.name
        if len(pieces) == 1 and pieces[0].__class__ is str:
            data = pieces[0].encode("utf-8", "replace")
            if head or tail:
                data = (head[0] if head else b"") + data + (tail[0] if tail else b"")
            return dz.compress(name, data, level, stamp)
        # as docxzip.join_deflated, in one pass: ready pieces copied, text stored
        ready, crc32, pack, out, crc, size = self._items, zlib.crc32, _STORED.pack, [], 0, 0
        if head:
            crc, size = crc32(head[0]), len(head[0])
            out.append(dz.stored_blocks(head[0]) if head[1] is None else head[1])
        for p in pieces:
            if p.__class__ is int:
                plain, packed = ready[p]
                out.append(packed)
            else:
                plain = p.encode("utf-8", "replace")
                n = len(plain)
                out += (pack(0, n, n ^ 0xFFFF), plain) if n < 0x10000 else (
                    dz.stored_blocks(plain),)
            crc, size = crc32(plain, crc), size + len(plain)
        if tail:
            crc, size = crc32(tail[0], crc), size + len(tail[0])
            out.append(dz.stored_blocks(tail[0]) if tail[1] is None else tail[1])
        out.append(b"\x03\x00")     # the final, empty block
        raw = b"".join(out)
        return dz.Member(name, 8, 0 if name.isascii() else 0x800, *stamp, crc, len(raw), size), raw


def post(tpl, part: Part, text: str) -> str:
    """docxtpl's processing of a rendered part, each step only where it can change something."""
    text = text.replace("\n<w:p ", "<w:p ").replace("\n<w:p>", "<w:p>")
    if "{_" in text or "_}" in text:
        for escaped, tag in (("{_{", "{{"), ("}_}", "}}"), ("{_%", "{%"), ("%_}", "%}")):
            text = text.replace(escaped, tag)
    if "\n" in text or "\t" in text or "\a" in text or "\f" in text:
        text = docxtpl.listing(text)
    if not part.is_body:
        if not part.checked:
            part.checked = True
            try:
                etree.fromstring(text.encode("utf-8"))
            except etree.XMLSyntaxError as exc:
                raise tpl._problem("template_structure", part, None,
                                   _("the tags make %(label)s invalid Word XML (%(exc)s)",
                                     label=part.label, exc=exc),
                                   _("keep each {% if %}/{% for %} and its end tag in the same "
                                     "paragraph, or use {%p ... %} tags")) from None
        return text
    xml = part.body_open + text[8:]
    if not part.checked:   # first letter: make sure the XML is sound, else repair as docxtpl
        part.checked = True
        try:
            etree.fromstring(xml)
        except etree.XMLSyntaxError:
            part.tree = True
    if part.tree:
        tree = docxtpl.fix_tables(xml)
        serialized = etree.tostring(tree, encoding="unicode")
        text = "<w:body>" + serialized[serialized.index(">") + 1:]
    if "docPr" in text:
        text = renumber_docpr(text, 1001)[0]
    return text


_IN_TAG = re.compile(r"(\{\{|\{%)(.*?)(\}\}|%\})", re.S)
_TAG_ENTITY = re.compile(r"&(amp|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);")


def unescape_tags(xml: str) -> str:
    """XML's character references inside ``{{ }}`` and ``{% %}`` as the characters they
    stand for: Word stores ``{{ x|default("A&B") }}`` as ``A&amp;B``, which docxtpl (no
    autoescape) writes back into the XML, so the letter reads "A&B". We escape every value,
    so the tag must hold the character itself. (``&lt;`` and ``&gt;`` docxtpl's patching
    already turned into ``<`` and ``>``.)"""
    if "&" not in xml:
        return xml

    def characters(m: "re.Match") -> str:
        ref = m.group(1)
        if ref[0] != "#":
            return {"amp": "&", "quot": '"', "apos": "'"}[ref]
        return chr(int(ref[2:], 16) if ref[1] == "x" else int(ref[1:]))

    def tag(m: "re.Match") -> str:
        inner = m.group(2)
        return m.group(1) + _TAG_ENTITY.sub(characters, inner) + m.group(3) if "&" in inner \
            else m.group(0)
    return _IN_TAG.sub(tag, xml)


def tables_need_fix(body_open: str, src: str, jsrc: str) -> bool:
    """Whether docxtpl's table fix (an lxml parse per letter) can change this body: a
    table whose rows do not fill its grid, or tags that add cells or change their span
    ({%tc %} loops, {% hm %}, {% colspan %}); rows repeated by {%tr %} cannot."""
    if "<w:tbl" not in src:
        return False
    if re.search(r"</w:tc>\{[{%#]|[%}#]\}<w:tc[ >]|w:gridSpan w:val=\"\{\{", jsrc):
        return True
    try:
        xml = body_open + src[8:]
        return etree.tostring(docxtpl.fix_tables(xml)) != etree.tostring(etree.fromstring(xml))
    except Exception:   # noqa: BLE001 - a table docxtpl cannot fix either: leave it
        return False
