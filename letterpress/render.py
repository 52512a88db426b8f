"""Fast rendering of Word (.docx) letter templates written for docxtpl.

A :class:`CompiledTemplate` reads a template once: it patches the XML of the
body, headers, footers and footnotes exactly as docxtpl does (tags split across
Word runs, ``{%p %}``, ``{%tr %}``, ``{%tc %}``, ``{%r %}``...) and compiles each
part holding Jinja tags, once. A letter then only runs those templates and
writes a .docx whose text equals docxtpl's, copying every unchanged member of
the template as its already-compressed bytes::

    tpl = CompiledTemplate("letter.docx")
    tpl.variables()                   # {"name": ["paragraph 3: 尊敬的{{ name }}…"], ...}
    letter = tpl.render({"name": "王秀英"})
    letter.save("0001-王秀英.docx")     # or letter.to_bytes()
    with MergedDocument(tpl, "letters.docx") as merged:
        merged.add(letter)            # each letter on its own new page(s)

Autoescape is always on (``&``, ``<`` or ``{{ }}`` in a value come out as typed)
and a missing field is an error. Values: strings, numbers, lists, dicts,
``docxtpl.RichText`` (``url_id=tpl.build_url_id(url)`` for links) and
``docxtpl.InlineImage(tpl, path_or_file, width=Mm(25))`` with this template as
``tpl``. Errors: :class:`~letterpress.errors.InputError` with code
``template_not_found`` or ``bad_template``; :class:`~letterpress.errors.TemplateProblemError`
with code ``template_syntax``, ``undefined_field``, ``render_failed`` or
``template_structure``, whose ``where.part`` names the place, e.g. "header 1, paragraph 2".

Where we differ from docxtpl on purpose: document properties come out as typed
(docxtpl leaves them XML-escaped, "A &amp; B"); footnotes are rendered once (docxtpl
renders them once per section, re-reading its own output); characters XML cannot
hold are dropped from values. A template object renders one letter at a time
(``current_rendering_part`` is its state while rendering): use processes, not threads.
"""
from __future__ import annotations

import functools
import hashlib
import html
import io
import os
import posixpath
import re
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union
from xml.sax.saxutils import escape as xml_escape

from docx.image.image import Image
from docx.oxml.shape import CT_Inline
from docxtpl import DocxTemplate
from jinja2 import (Environment, StrictUndefined, TemplateSyntaxError, UndefinedError, meta,
                    nodes)
from lxml import etree

from . import docxzip as dz
from .docxzip import MergedDocument
from .errors import InputError, LetterpressError, TemplateProblemError, Where
from .files import PathLike, atomic_path

__all__ = ["CompiledTemplate", "RenderedLetter", "MergedDocument"]

# docxtpl's own XML rewriting, used as is so that our output follows its rules exactly.
_patch = functools.partial(DocxTemplate.patch_xml, None)
_listing = functools.partial(DocxTemplate.resolve_listing, None)
_fix_tables = functools.partial(DocxTemplate.fix_tables, None)

_PARA = re.compile(r"<w:p([ >])")
_TAGS = re.compile(r"\{[{%#]")
_BAD_CHARS = re.compile("[\x00-\x06\x08\x0b\x0e-\x1f\ufffe\uffff]")  # not allowed in XML
_SPECIAL = ("\n", "\t", "\a", "\f", "{_", "_}", "docPr")   # output that needs post-processing
_CELL_TAGS = re.compile(r"</w:tc>\{[{%]|[%}]\}<w:tc[ >]|w:gridSpan w:val=\"\{\{")
_IMAGE_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/bmp": "bmp",
              "image/tiff": "tiff"}
_CORE_PROPS = (("author", "creator"), ("comments", "description"), ("identifier", "identifier"),
               ("language", "language"), ("subject", "subject"), ("title", "title"))
_DC = "{http://purl.org/dc/elements/1.1/}"
_SYNTAX_HINT = ("check the tags in that paragraph: every {% if %} needs an {% endif %}, every "
                "{% for %} an {% endfor %}, and tags are written {{ name }} or {% ... %}; if Word "
                "split a tag with formatting or autocorrect, retype it in one go")
_LIVE: "weakref.WeakValueDictionary[str, CompiledTemplate]" = weakref.WeakValueDictionary()
DEFAULT_LEVEL = 1   # zlib level for the parts written per letter: fastest, a little larger


def _finalize(value: Any) -> Any:
    """Drop characters XML cannot hold (a stray control character from a spreadsheet)."""
    if type(value) is str and _BAD_CHARS.search(value):
        return _BAD_CHARS.sub("", value)
    return value


def _snippet(line: str, focus: Optional[str] = None, width: int = 40) -> str:
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", line)).split())
    if len(text) <= width:
        return text
    at = max(text.find(focus) - 10, 0) if focus and focus in text else 0
    return ("…" if at else "") + text[at:at + width] + "…"


class _Part:
    """One XML part rendered per letter: the body, a header or footer, the footnotes."""

    def __init__(self, tpl: "CompiledTemplate", name: str, label: str, source: str,
                 decl: bytes = b"") -> None:
        self.name, self.label, self.source, self.decl = name, label, source, decl
        patched = _patch(source)
        self.dynamic = bool(_TAGS.search(patched))
        self.jsrc = _PARA.sub(r"\n<w:p\1", patched)   # docxtpl's trick: one line per paragraph
        self.checked = self.tree = False
        self.next_id = 1 + max(map(int, re.findall(r'\sid="(\d+)"', source)), default=0)
        self._marks: Optional[List[Optional[int]]] = None
        try:
            self.template = tpl._env.from_string(self.jsrc)
        except TemplateSyntaxError as exc:
            raise tpl._problem("template_syntax", self, exc.lineno,
                               f"the template's tags are not valid: {exc.message}",
                               _SYNTAX_HINT) from None

    def describe(self, lineno: Optional[int], focus: Optional[str] = None) -> Tuple[str, str]:
        """("header 1, paragraph 2", its text) for a line of the Jinja source.

        Paragraphs are numbered as in the template file, in document order (table cells
        included), also where docxtpl removed a ``{%p %}`` paragraph before them.
        """
        lines = re.split(r"\r\n|\r|\n", self.jsrc)
        if self._marks is None:
            count = iter(range(1, 1 << 30))

            def mark(m):   # empty paragraphs (<w:p/>) count but keep their form
                n = next(count)
                return m.group(0) if m.group(1) == "/" else f'<w:p lpn="{n}"{m.group(1)}'
            marked = re.sub(r"<w:p([ >/])", mark, self.source)
            dlines = re.split(r"\r\n|\r|\n", _PARA.sub(r"\n<w:p\1", _patch(marked)))
            marks = [int(m.group(1)) if (m := re.match(r'<w:p lpn="(\d+)"', d)) else None
                     for d in dlines]
            if len(dlines) != len(lines):   # should patching ever differ: number by line
                marks = [None] + list(range(1, len(lines)))
            self._marks = marks
        i = min(max((lineno or 1) - 1, 0), len(lines) - 1)
        line, number = lines[i], self._marks[i]
        end = line.rfind("</w:p>") + 6
        tail = re.findall(r"\{%.*?%\}|\{\{.*?\}\}", line[end:]) if number and end > 5 else []
        inside = focus in line[:end] if focus else bool(_TAGS.search(line[:end]))
        if tail and not inside:   # a tag left by a {%p %}/{%tr %} paragraph docxtpl removed
            k = next((k for k, tag in enumerate(tail, 1) if focus and focus in tag), 1)
            after = next((m for m in self._marks[i + 1:] if m), None)
            number, line = min(number + k, after - 1) if after else number + k, tail[k - 1]
        elif tail:
            line = line[:end]
        place = ", ".join(x for x in (self.label, f"paragraph {number}" if number else "") if x)
        return place or "the start of the document", _snippet(line, focus)


class _Sink:
    """What one letter adds to the package: images and relationships."""

    def __init__(self) -> None:
        self.rels: Dict[tuple, str] = {}
        self.media: Dict[str, bytes] = {}

    def relate(self, part: str, reltype: str, target: str, external: bool,
               rid: Optional[str] = None) -> str:
        key = (part, reltype, target, external)
        if key not in self.rels:
            self.rels[key] = rid or f"rIdLp{len(self.rels) + 1}"
        return self.rels[key]


class _RenderingPart:
    """``tpl.current_rendering_part`` while a part renders: where docxtpl's ``InlineImage``
    adds its picture (as python-docx's ``StoryPart.new_pic_inline`` would)."""

    def __init__(self, part: _Part, sink: _Sink) -> None:
        self.name, self._sink, self._next_id = part.name, sink, part.next_id

    def relate_to(self, target: str, reltype: str, is_external: bool = False) -> str:
        return self._sink.relate(self.name, reltype, target, bool(is_external))

    def new_pic_inline(self, image_descriptor, width=None, height=None) -> CT_Inline:
        if isinstance(image_descriptor, (bytes, bytearray)):
            image_descriptor = io.BytesIO(image_descriptor)
        elif isinstance(image_descriptor, os.PathLike):
            image_descriptor = os.fspath(image_descriptor)
        image = Image.from_file(image_descriptor)
        ext = _IMAGE_EXT.get(image.content_type, image.ext.lower())
        media = f"word/media/lp-{image.sha1[:20]}.{ext}"
        self._sink.media[media] = image.blob
        rid = self.relate_to(posixpath.relpath(media, posixpath.dirname(self.name)), dz.RT_IMAGE)
        cx, cy = image.scaled_dimensions(width, height)
        self._next_id += 1
        return CT_Inline.new_pic_inline(self._next_id - 1, rid, image.filename, cx, cy)


class RenderedLetter:
    """One rendered letter, as plain data (picklable: a worker process can render and
    the main process write or merge it).

    ``pieces`` is the body: strings, and numbers standing for pieces of the template
    that are stored ready-compressed. ``parts`` holds the other rendered parts (name,
    XML bytes), ``rels`` the relationships the letter adds (part, rId, type, target,
    external) and ``media`` its images (part name, bytes).
    """

    __slots__ = ("key", "pieces", "parts", "rels", "media", "_template")

    def __init__(self, key: str, pieces: tuple, parts: tuple = (), rels: tuple = (),
                 media: tuple = (), template: Optional["CompiledTemplate"] = None) -> None:
        self.key, self.pieces, self.parts, self.rels, self.media = key, pieces, parts, rels, media
        self._template = template

    def __reduce__(self):
        return (RenderedLetter, (self.key, self.pieces, self.parts, self.rels, self.media))

    def template(self, template: Optional["CompiledTemplate"] = None) -> "CompiledTemplate":
        """The template this letter came from (found by its key after unpickling)."""
        found = template or self._template or _LIVE.get(self.key)
        if found is None or found.key != self.key:
            raise ValueError("this letter's template is not loaded in this process; pass it")
        return found

    @property
    def body(self) -> str:
        """The letter's body XML (the content of ``<w:body>``)."""
        return self.template()._body_text(self)

    def to_bytes(self, template: Optional["CompiledTemplate"] = None) -> bytes:
        """The letter as a complete .docx file."""
        return b"".join(self.template(template)._zip(self))

    def save(self, path: PathLike, template: Optional["CompiledTemplate"] = None) -> None:
        """Write the .docx to ``path`` (atomically: a temporary name, then a rename)."""
        pieces = self.template(template)._zip(self)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            fh.writelines(pieces)


class CompiledTemplate:
    """A Word template read, patched and compiled once, for rendering many letters.

    ``source`` is a path or the bytes of a .docx; ``name`` is how errors name it
    (default: the path). ``filters`` adds Jinja filters. ``compresslevel`` is the
    zlib level for the parts written per letter.
    """

    def __init__(self, source: Union[PathLike, bytes], *, name: Optional[str] = None,
                 compresslevel: int = DEFAULT_LEVEL,
                 filters: Optional[Mapping[str, Callable]] = None) -> None:
        if isinstance(source, (bytes, bytearray)):
            data, self.name = bytes(source), name or "template.docx"
        else:
            self.name = name or os.fspath(source)
            try:
                with open(source, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                raise InputError("the Word template does not exist", code="template_not_found",
                                 where=Where(file=self.name),
                                 hint="check the path given with --template") from None
            except OSError as exc:
                raise InputError(f"the Word template cannot be read ({exc.strerror})",
                                 code="bad_template", where=Where(file=self.name)) from None
        self._data, self._filters = data, dict(filters or {})
        self.key = hashlib.sha1(data).hexdigest()
        self.compresslevel = compresslevel
        self.current_rendering_part: Optional[_RenderingPart] = None
        self._urls: Dict[str, str] = {}
        self._env = Environment(autoescape=True, undefined=StrictUndefined, finalize=_finalize)
        self._prop_env = Environment(undefined=StrictUndefined, finalize=_finalize)
        self._env.filters.update(self._filters)
        self._prop_env.filters.update(self._filters)
        try:
            pkg = dz.Package(data)
            self._load(pkg)
        except dz.NotDocx as exc:
            raise InputError(f"the template cannot be used: {exc}", code="bad_template",
                             where=Where(file=self.name), hint=exc.hint) from None
        _LIVE[self.key] = self

    def __reduce__(self):   # for worker processes: compiled again on the other side
        return (_rebuild, (self._data, self.name, self.compresslevel, self._filters))

    # -- reading the template -------------------------------------------------------
    def _load(self, pkg: dz.Package) -> None:
        doc = self._doc_name = pkg.doc
        self._stamp = pkg.stamp
        src, self._body_open, head, tail = dz.split_body(pkg.blob(doc))
        self._doc_prefix, self._doc_suffix = head + b"<w:body>", b"</w:body>" + tail
        body = self._body = _Part(self, doc, "", src)
        body.tree = body.dynamic and self._tables_need_fix(src, body.jsrc)
        parts, self._header_parts, numbers = [body], [], {}
        for kind, reltype in (("header", dz.RT_HEADER), ("footer", dz.RT_FOOTER)):
            for rid, rt, target, external in pkg.rels(doc):
                blob = None if external or rt != reltype else pkg.blob(target)
                if blob and target not in {p.name for p in parts}:
                    numbers[kind] = numbers.get(kind, 0) + 1
                    found = re.search(r"(\d+)\.xml$", target)
                    label = f"{kind} {found.group(1) if found else numbers[kind]}"
                    parts.append(_Part(self, target, label, dz.reserialize(blob), dz.XML_DECL))
                    if parts[-1].dynamic:
                        self._header_parts.append((target, rid, rt, pkg.overrides.get(target)))
        for target, ctype in pkg.overrides.items():
            blob = pkg.blob(target) if ctype == dz.CT_FOOTNOTES else None
            if blob:
                parts.append(_Part(self, target, "footnotes", blob.decode("utf-8")))
        self._parts, self._dynamic = parts, [p for p in parts[1:] if p.dynamic]
        replaced: Dict[str, bytes] = {}
        for part in parts:   # parts without tags: docxtpl's processing, once
            if not part.dynamic:
                text = self._post(part, part.template.render({}))
                if part is body:
                    self._const_body = text
                elif text != part.source:
                    replaced[part.name] = part.decl + text.encode("utf-8")
        self._core = self._load_core(pkg)
        types = pkg.types_xml
        for ctype, ext in _IMAGE_EXT.items():   # so that letters may add pictures
            if ext not in pkg.defaults:
                at = types.rindex("</Types>")
                default = f'<Default Extension="{ext}" ContentType="{ctype}"/>'
                types = types[:at] + default + types[at:]
        self._types_xml, replaced["[Content_Types].xml"] = types, types.encode("utf-8")
        renderable = [body] + self._dynamic
        self._part_rels = {p.name: pkg.text(dz.rels_name(p.name)) for p in renderable}
        skip = {p.name for p in renderable} | {dz.rels_name(p.name) for p in renderable}
        if self._core:
            skip.add(self._core[0])
        members = {m.name: (m, raw) for m, raw in pkg.members}
        self._optional = {p.name: members.get(dz.rels_name(p.name)) for p in renderable}
        self._static = [dz.compress(m.name, replaced[m.name], 6, self._stamp)
                        if m.name in replaced else (m, raw)
                        for m, raw in pkg.members if m.name not in skip]
        head, cds = [], []
        for member, raw in self._static:
            cds.append(dz.central_header(member, sum(map(len, head))))
            head += (dz.local_header(member), raw)
        self._head, self._head_cd = b"".join(head), b"".join(cds)
        statics = "".join(p.source for p in parts[1:] if not p.dynamic)
        self._docpr_start = 1 + max(map(int, re.findall(r'<wp:docPr\b[^>]*?\sid="(\d+)"', statics)),
                                    default=0)
        inner = src[8:-9]
        at = dz.last_sectpr(inner)
        self._final_sect = inner[at:] if at >= 0 else None
        self._break_sect = (dz.section_break(self._final_sect, self._body_open)
                            if at >= 0 else dz.DEFAULT_BREAK)
        self._prepare_chunks()

    def _tables_need_fix(self, src: str, jsrc: str) -> bool:
        """Whether docxtpl's table fix (an lxml parse per letter) can change this body: a
        table whose rows do not fill its grid, or tags that add cells or change their span
        ({%tc %} loops, {% hm %}, {% colspan %}); rows repeated by {%tr %} cannot."""
        if "<w:tbl" not in src:
            return False
        if _CELL_TAGS.search(jsrc):
            return True
        try:
            xml = self._body_open + src[8:]
            return etree.tostring(_fix_tables(xml)) != etree.tostring(etree.fromstring(xml))
        except Exception:   # noqa: BLE001 - a table docxtpl cannot fix either: leave it
            return False

    def _load_core(self, pkg: dz.Package):
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
                label = f"document properties ({prop})"
                try:
                    template = self._prop_env.from_string(element.text)
                except TemplateSyntaxError as exc:
                    raise TemplateProblemError(
                        f"the template's tags are not valid: {exc.message}", code="template_syntax",
                        where=Where(file=self.name, part=label), hint=_SYNTAX_HINT) from None
                marker = f"@@letterpress-{len(props)}@@"
                props.append((marker, label, template, element.text))
                element.text = marker
        if not props:
            return None
        xml = etree.tostring(root, encoding="UTF-8", xml_declaration=True, standalone=True)
        return pkg.core, xml.decode("utf-8"), props

    def _prepare_chunks(self) -> None:
        """Deflate, once, every constant piece of the body's compiled Jinja code (after
        docxtpl's newline removal), so that most of a letter's body is copied, not compressed."""
        level = self.compresslevel
        self._doc_head = (self._doc_prefix[:-8], dz.precompress(self._doc_prefix[:-8], level))
        self._doc_tail = (self._doc_suffix[9:], dz.precompress(self._doc_suffix[9:], level))
        self._chunk_of: Dict[int, int] = {}
        self._chunks: List[tuple] = []
        self._edges: Dict[tuple, Any] = {}
        if not self._body.dynamic or self._body.tree:
            return

        def strings(code):
            for const in code.co_consts:
                if isinstance(const, str):
                    yield const
                elif hasattr(const, "co_consts"):
                    yield from strings(const)
        template = self._body.template
        codes = [template.root_render_func.__code__]
        codes += [f.__code__ for f in template.blocks.values()]
        found = {id(s): s for code in codes for s in strings(code)}
        order = {s: i for i, s in enumerate(sorted(set(found.values())))}  # same in every process
        for s in sorted(order, key=order.get):
            text = s.replace("\n<w:p ", "<w:p ").replace("\n<w:p>", "<w:p>")
            special, plain = any(x in text for x in _SPECIAL), text.encode("utf-8")
            packed = dz.precompress(plain, level) if len(plain) >= 200 and not special else None
            self._chunks.append((text, s, plain, packed, special))
        self._chunk_of = {i: order[s] for i, s in found.items()}
        self._keep = list(found.values())   # the ids above stay valid while these live

    # -- public API -----------------------------------------------------------------------
    def build_url_id(self, url: str) -> str:
        """A hyperlink's relationship id: ``RichText(..., url_id=tpl.build_url_id(url))``."""
        return self._urls.setdefault(url, f"rIdLpu{len(self._urls) + 1}")

    def variables(self) -> Dict[str, List[str]]:
        """Fields the template needs from the context, each with the places that use it.

        ``{"name": ["paragraph 3: 尊敬的{{ name }}…", "header 1, paragraph 1: ..."]}``.
        Loop variables and names set inside the template are not fields. The names are
        those of docxtpl's ``get_undeclared_template_variables``, plus any used in the
        footnotes or document properties (which rendering needs as well).
        """
        found: Dict[str, List[str]] = {}
        for part in (p for p in self._parts if p.dynamic):
            ast = self._env.parse(part.jsrc)
            names = meta.find_undeclared_variables(ast)
            for name, lineno in sorted(_loads(ast, names, frozenset()), key=lambda x: x[1]):
                place, text = part.describe(lineno, name)
                found.setdefault(name, []).append(f"{place}: {text}" if text else place)
            for name in sorted(names - set(found)):
                found[name] = [part.label or "the body"]
        for _, label, _, text in self._core[2] if self._core else ():
            for name in sorted(meta.find_undeclared_variables(self._prop_env.parse(text))):
                found.setdefault(name, []).append(label)
        return {name: list(dict.fromkeys(places)) for name, places in found.items()}

    def render(self, context: Mapping[str, Any]) -> RenderedLetter:
        """Render one letter from ``context`` (field name -> value)."""
        ctx, sink = dict(self._env.globals), _Sink()   # a shared context: no copy per part
        ctx.update(context)
        pieces = self._render_body(ctx, sink)
        parts = []
        for part in self._dynamic:
            text = self._post(part, "".join(self._run(part, ctx, sink)))
            self._collect_links(part, text, sink)
            parts.append((part.name, part.decl + text.encode("utf-8", "replace")))
        if self._core:
            parts.append(self._render_core(ctx))
        rels = tuple((k[0], rid, k[1], k[2], k[3]) for k, rid in sink.rels.items())
        return RenderedLetter(self.key, pieces, tuple(parts), rels, tuple(sink.media.items()), self)

    def render_bytes(self, context: Mapping[str, Any]) -> bytes:
        """Render one letter and return the .docx file's bytes."""
        return self.render(context).to_bytes(self)

    def render_to(self, context: Mapping[str, Any], path: PathLike) -> RenderedLetter:
        """Render one letter, write it to ``path`` (atomically) and return it."""
        letter = self.render(context)
        letter.save(path, self)
        return letter

    # -- rendering ----------------------------------------------------------------------
    def _run(self, part: _Part, ctx: dict, sink: _Sink) -> List[str]:
        template = part.template
        self.current_rendering_part = _RenderingPart(part, sink)
        try:
            try:
                return list(template.root_render_func(template.new_context(ctx, True)))
            except Exception:  # noqa: BLE001 - Jinja rewrites the traceback to template lines
                template.environment.handle_exception()
        except UndefinedError as exc:
            msg = exc.message or str(exc)
            found = re.search(r"'([^']+)' is undefined|has no attribute '([^']+)'", msg)
            field = (found.group(1) or found.group(2)) if found else msg
            problem = self._problem(
                "undefined_field", part, _template_line(exc),
                f"the field {field!r} has no value for this letter ({msg})",
                f"give every letter a value for {field!r} (a column of that name in the "
                "recipient list, or a setting), or correct the name in the template", field)
            problem.field = field
            raise problem from exc
        except LetterpressError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. an image that cannot be read
            raise self._problem("render_failed", part, _template_line(exc),
                                f"the letter could not be filled in ({exc or type(exc).__name__})",
                                "check the values given to the fields used there") from exc
        finally:
            self.current_rendering_part = None

    def _render_body(self, ctx: dict, sink: _Sink) -> tuple:
        part = self._body
        if not part.dynamic:
            return (self._const_body,)
        strings = self._run(part, ctx, sink)
        if part.checked and not part.tree and self._chunks:
            out, lit, dyn, chunk_of, chunks = [], [], [], self._chunk_of, self._chunks
            for s in strings:
                k = chunk_of.get(id(s))
                if k is None:
                    dyn.append(s)
                    lit.append(s)
                    continue
                chunk = chunks[k]
                if chunk[4]:
                    break
                if chunk[3] is None:
                    lit.append(chunk[0])
                else:
                    if lit:
                        out.append("".join(lit))
                        lit = []
                    out.append(k)
            else:
                values = "".join(dyn)
                if not any(x in values for x in _SPECIAL):
                    if lit:
                        out.append("".join(lit))
                    self._collect_links(part, values, sink)
                    return tuple(out)
        text = self._post(part, "".join(strings))
        self._collect_links(part, text, sink)
        return (text,)

    def _post(self, part: _Part, text: str) -> str:
        """docxtpl's processing of a rendered part, each step only where it can change something."""
        text = text.replace("\n<w:p ", "<w:p ").replace("\n<w:p>", "<w:p>")
        if "{_" in text or "_}" in text:
            for escaped, tag in (("{_{", "{{"), ("}_}", "}}"), ("{_%", "{%"), ("%_}", "%}")):
                text = text.replace(escaped, tag)
        if "\n" in text or "\t" in text or "\a" in text or "\f" in text:
            text = _listing(text)
        if part is not self._body:
            if not part.checked:
                part.checked = True
                try:
                    etree.fromstring(text.encode("utf-8"))
                except etree.XMLSyntaxError as exc:
                    raise self._problem("template_structure", part, None,
                                        f"the tags make {part.label} invalid Word XML ({exc})",
                                        "keep each {% if %}/{% for %} and its end tag in the "
                                        "same paragraph, or use {%p ... %} tags") from None
            return text
        xml = self._body_open + text[8:]
        if not part.checked:   # first letter: make sure the XML is sound, else repair as docxtpl
            part.checked = True
            try:
                etree.fromstring(xml)
            except etree.XMLSyntaxError:
                part.tree = True
        if part.tree:
            tree = _fix_tables(xml)
            serialized = etree.tostring(tree, encoding="unicode")
            text = "<w:body>" + serialized[serialized.index(">") + 1:]
        if "docPr" in text:
            text = dz.renumber_docpr(text, 1001)[0]
        return text

    def _collect_links(self, part: _Part, text: str, sink: _Sink) -> None:
        if "rIdLpu" in text:
            urls = {rid: url for url, rid in self._urls.items()}
            for rid in set(re.findall(r"rIdLpu\d+", text)) & set(urls):
                sink.relate(part.name, dz.RT_HYPERLINK, urls[rid], True, rid)

    def _render_core(self, ctx: dict) -> Tuple[str, bytes]:
        name, xml, props = self._core
        for marker, label, template, _ in props:
            try:
                value = template.render(ctx)
            except UndefinedError as exc:
                raise TemplateProblemError(
                    f"a field has no value for this letter ({exc.message})", code="undefined_field",
                    where=Where(file=self.name, part=label),
                    hint="give every letter that value, or edit the document properties") from exc
            xml = xml.replace(marker, xml_escape(value))
        return name, xml.encode("utf-8", "replace")

    def _problem(self, code: str, part: _Part, lineno: Optional[int], message: str, hint: str,
                 focus: Optional[str] = None) -> TemplateProblemError:
        place, text = part.describe(lineno, focus)
        if text:
            message += f"; the paragraph reads “{text}”"
        return TemplateProblemError(message, code=code, where=Where(file=self.name, part=place),
                                    hint=hint)

    # -- writing ------------------------------------------------------------------------
    def _body_text(self, letter: RenderedLetter) -> str:
        chunks = self._chunks
        return "".join(chunks[p][0] if isinstance(p, int) else p for p in letter.pieces)[8:-9]

    def _merge_form(self, letter: RenderedLetter):
        """The letter's body for a merged document, without ``<w:body>`` and its section
        properties: ([(plain, packed, store), ...], its last paragraph); None when the
        pieces do not allow it (the merged document then takes the text)."""
        pieces, chunks, final = letter.pieces, self._chunks, self._final_sect
        text = [chunks[p][0] if isinstance(p, int) else p for p in pieces]
        if len(pieces) < 2 or not final or not text[0].startswith("<w:body>") \
                or not text[-1].endswith(final + "</w:body>"):
            return None
        text[-1] = text[-1][:-len(final) - 9]
        i, tail = len(pieces) - 1, text[-1]
        while (at := dz.last_paragraph(tail)) is None:   # back to where the last paragraph starts
            if i == 1:
                return None
            i -= 1
            tail = text[i] + tail
        items = [self._piece(pieces[0], 8, None), *(self._piece(p, 0, None) for p in pieces[1:i])]
        if at:
            items.append(self._piece(pieces[i], 0, at))
        return items, tail[at:]

    def _piece(self, piece: Union[int, str], start: int, end: Optional[int]):
        """(plain, packed or None, store) for ``piece[start:end]``; chunks deflated once."""
        if isinstance(piece, str):
            return piece[start:end].encode("utf-8", "replace"), None, True
        if start == 0 and end is None:
            return self._chunks[piece][2], self._chunks[piece][3], True
        if (piece, start, end) not in self._edges:
            plain = self._chunks[piece][0][start:end].encode("utf-8")
            packed = dz.precompress(plain, self.compresslevel)
            self._edges[(piece, start, end)] = (plain, packed, True)
        return self._edges[(piece, start, end)]

    def _split_section(self, inner: str) -> Tuple[str, str]:
        """(content, its section properties as a "next page" section break)."""
        final = self._final_sect
        if final and inner.endswith(final):
            return inner[:-len(final)], self._break_sect
        at = dz.last_sectpr(inner)
        if at < 0:
            return inner, dz.DEFAULT_BREAK
        return inner[:at], dz.section_break(inner[at:], self._body_open)

    def _zip(self, letter: RenderedLetter) -> List[bytes]:
        level, stamp, pieces = self.compresslevel, self._stamp, letter.pieces
        if len(pieces) == 1 and isinstance(pieces[0], str):
            body = self._doc_head[0] + pieces[0].encode("utf-8", "replace") + self._doc_tail[0]
            members = [dz.compress(self._doc_name, body, level, stamp)]
        else:
            chunks = self._chunks
            items = [chunks[p][2:4] if isinstance(p, int) else (p.encode("utf-8", "replace"), None)
                     for p in pieces]
            members = [dz.join_deflated(self._doc_name, [self._doc_head, *items, self._doc_tail],
                                        stamp)]
        members += [dz.compress(name, data, level, stamp) for name, data in letter.parts]
        added: Dict[str, list] = {}
        for src, rid, reltype, target, external in letter.rels:
            added.setdefault(src, []).append((rid, reltype, target, external))
        for part, original in self._optional.items():
            if part in added:
                rels = dz.rels_document(self._part_rels[part], added[part])
                members.append(dz.compress(dz.rels_name(part), rels, level, stamp))
            elif original:
                members.append(original)
        members += [dz.compress(name, data, level, stamp) for name, data in letter.media]
        return dz.zip_pieces(self._head, self._head_cd, len(self._static), members)


def _rebuild(data: bytes, name: str, level: int, filters: dict) -> CompiledTemplate:
    return CompiledTemplate(data, name=name, compresslevel=level, filters=filters)


def _template_line(exc: BaseException) -> Optional[int]:
    """The template line where ``exc`` was raised (Jinja names those frames ``<template>``)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _loads(node: nodes.Node, names: set, hidden: frozenset):
    """(name, line) for each use of a field in ``names``, skipping loop variables."""
    if isinstance(node, nodes.Name):
        if node.ctx == "load" and node.name in names and node.name not in hidden:
            yield node.name, node.lineno
        return
    if isinstance(node, nodes.For):
        inner = hidden | {n.name for n in node.target.find_all(nodes.Name)} | {"loop"}
        yield from _loads(node.iter, names, hidden)
        for child in [*node.body, *([node.test] if node.test else [])]:
            yield from _loads(child, names, inner)
        for child in node.else_:
            yield from _loads(child, names, hidden)
        return
    for child in node.iter_child_nodes():
        yield from _loads(child, names, hidden)
