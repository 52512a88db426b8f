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

A header or footer whose fields have the same plain values (text, numbers) as in
the letter before is not rendered again, and :class:`MergedDocument` lets such
letters share one copy of it.

Where we differ from docxtpl on purpose: document properties come out as typed
(docxtpl leaves them XML-escaped, "A &amp; B"); footnotes are rendered once (docxtpl
renders them once per section, re-reading its own output); characters XML cannot
hold are dropped from values. A template object renders one letter at a time
(``current_rendering_part`` is its state while rendering): use processes, not threads.

The work is shared out: :mod:`letterpress.docx.load` reads a template,
:mod:`letterpress.docx.parts` compiles and assembles its parts,
:mod:`letterpress.docx.locate` says where fields and errors are,
:mod:`letterpress.docx.merge` puts letters in one document and
:mod:`letterpress.docx.zipwriter` writes zips.
"""
from __future__ import annotations

import hashlib
import os
import re
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from jinja2 import StrictUndefined, UndefinedError

from letterpress.docx import sandbox
from letterpress.docx import zipwriter as dz
from letterpress.docx.images import RenderingPart, Sink
from letterpress.docx.load import load
from letterpress.docx.locate import problem, template_line, variables
from letterpress.docx.merge import MergedDocument
from letterpress.docx.package import RT_HYPERLINK, NotDocx, Package
from letterpress.docx.parts import Part, finalize, post
from letterpress.errors import InputError, LetterpressError, TemplateProblemError, Where
from letterpress.files import PathLike, atomic_path
from letterpress.i18n import N_, _

__all__ = ["CompiledTemplate", "RenderedLetter", "MergedDocument"]

_LIVE: "weakref.WeakValueDictionary[str, CompiledTemplate]" = weakref.WeakValueDictionary()
_RECENT: Dict[tuple, "CompiledTemplate"] = {}   # the last templates read from files, kept
_KEEP = 2
UNSAFE_HINT = N_("a template is a letter, not a program: it may use the fields (columns and "
               "settings) and simple tags, not Python's internals; remove that tag")
DEFAULT_LEVEL = 1   # zlib level for the parts written per letter: fastest, a little larger


class RenderedLetter:
    """One rendered letter, as plain data (picklable: a worker process can render and
    the main process write or merge it).

    ``pieces`` is the body; ``parts`` holds the other rendered parts as (name, pieces).
    Pieces are strings, and numbers standing for pieces of the template that are
    stored ready-compressed. ``rels`` are the relationships the letter adds (part, rId,
    type, target, external) and ``media`` its images (part name, bytes).
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
        return self.template()._body.text(self.pieces)[8:-9]

    def to_bytes(self, template: Optional["CompiledTemplate"] = None) -> bytes:
        """The letter as a complete .docx file."""
        return b"".join(self.template(template)._zip(self))

    def save(self, path: PathLike, template: Optional["CompiledTemplate"] = None) -> None:
        """Write the .docx to ``path`` (atomically: a temporary name, then a rename)."""
        data = self.to_bytes(template)
        with atomic_path(path) as tmp:
            write_file(tmp, data)


def write_file(path: PathLike, data: bytes) -> None:
    """Write ``data`` to a new or truncated file with as few system calls as may be."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
                 | getattr(os, "O_CLOEXEC", 0), 0o600)   # owner-only: it holds personal data
    try:
        view, done = memoryview(data), 0
        while done < len(data):
            done += os.write(fd, view[done:])
    finally:
        os.close(fd)


class CompiledTemplate:
    """A Word template read, patched and compiled once, for rendering many letters.

    ``source`` is a path or the bytes of a .docx; ``name`` is how errors name it
    (default: the path). ``filters`` adds Jinja filters. ``compresslevel`` is the
    zlib level for the parts written per letter. :meth:`from_file` gives the template
    of a path compiled once (checking a batch and rendering it share one).
    """

    def __init__(self, source: Union[PathLike, bytes], *, name: Optional[str] = None,
                 compresslevel: int = DEFAULT_LEVEL,
                 filters: Optional[Mapping[str, Callable]] = None,
                 limits: Optional[sandbox.Limits] = None) -> None:
        if isinstance(source, (bytes, bytearray)):
            data, self.name = bytes(source), name or "template.docx"
        else:
            self.name = name or os.fspath(source)
            try:
                with open(source, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                raise InputError(_("the Word template does not exist"), code="template_not_found",
                                 where=Where(file=self.name),
                                 hint=_("check the path given with --template")) from None
            except OSError as exc:
                raise InputError(_("the Word template cannot be read (%(strerror)s)",
                                   strerror=exc.strerror),
                                 code="bad_template", where=Where(file=self.name)) from None
        self._data, self._filters = data, dict(filters or {})
        self.key = hashlib.sha1(data).hexdigest()
        self.compresslevel = compresslevel
        self.current_rendering_part: Optional[RenderingPart] = None
        self._urls: Dict[str, str] = {}
        self._env = sandbox.environment(autoescape=True, undefined=StrictUndefined,
                                        finalize=finalize, limits=limits)
        self._prop_env = sandbox.environment(undefined=StrictUndefined, finalize=finalize,
                                             limits=limits)
        self._env.filters.update(self._filters)
        self._prop_env.filters.update(self._filters)
        self._written: Dict[str, tuple] = {}   # part -> (pieces, member) of the last letter
        try:
            load(self, Package(data))
        except NotDocx as exc:
            raise InputError(_("the template cannot be used: %(exc)s", exc=exc), code="bad_template",
                             where=Where(file=self.name), hint=exc.hint) from None
        self._by_name = {p.name: p for p in self._parts}
        _LIVE[self.key] = self
        if not self._filters and compresslevel == DEFAULT_LEVEL and limits is None:
            _RECENT.pop((self.key, self.name), None)
            _RECENT[(self.key, self.name)] = self
            while len(_RECENT) > _KEEP:
                del _RECENT[next(iter(_RECENT))]

    @classmethod
    def from_file(cls, path: PathLike) -> "CompiledTemplate":
        """The template at ``path``, compiled once: the same object again while the file
        holds the same bytes (``letterpress letters`` checks the template, then renders)."""
        name = os.fspath(path)
        try:
            with open(name, "rb") as fh:
                data = fh.read()
        except OSError:
            return cls(path)   # the error, as the constructor words it
        found = _RECENT.get((hashlib.sha1(data).hexdigest(), name))
        return found if found is not None else cls(data, name=name)

    def __reduce__(self):   # for worker processes: compiled again on the other side
        return (_rebuild, (self._data, self.name, self.compresslevel, self._filters,
                           self._env.limits))

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
        return variables(self._env, self._parts, self._prop_env, self._core)

    def unsafe_places(self) -> List[Tuple[str, str]]:
        """(place, tag) for each tag that reaches for what templates may not use (found
        without rendering): ``[("paragraph 4 (“{{ cycler.__init__… }}”)", ".__init__")]``."""
        found = []
        for part in (p for p in self._parts if p.dynamic):
            for lineno, what in sandbox.unsafe_uses(part.parsed(self._env)):
                place, text = part.describe(lineno, _bare_name(what))
                found.append((f"{place} (“{text}”)" if text else place, what))
        for _marker, label, _tpl, text in self._core[2] if self._core else ():
            found += [(label, what) for _, what in sandbox.unsafe_uses(self._prop_env.parse(text))]
        return found

    def uses(self, name: str) -> bool:
        """Whether the template uses the field ``name`` (worked out once per template)."""
        names = self.__dict__.get("_used_names")
        if names is None:
            names = self.__dict__["_used_names"] = frozenset(self.variables())
        return name in names

    def render(self, context: Mapping[str, Any]) -> RenderedLetter:
        """Render one letter from ``context`` (field name -> value), within the work one
        letter may do (:class:`letterpress.docx.sandbox.Limits`)."""
        with sandbox.limits(self._env.limits):
            return self._render(context)

    def _render(self, context: Mapping[str, Any]) -> RenderedLetter:
        ctx, sink = dict(self._env.globals), Sink()   # a shared context: no copy per part
        ctx.update(context)
        body = self._body
        pieces = self._render_part(body, ctx, sink) if body.dynamic else self._const_body
        parts = []
        for part in self._dynamic:
            key, found = part.memo(ctx)
            if found is None:
                before = len(sink)
                found = self._render_part(part, ctx, sink)
                part.remember(key if len(sink) == before else None, found)
            parts.append((part.name, found))
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
    def _render_part(self, part: Part, ctx: dict, sink: Sink) -> tuple:
        strings = self._run(part, ctx, sink)
        fast = part.assemble(strings)
        if fast is not None:
            pieces, values = fast
            self._collect_links(part, values, sink)
            return pieces
        text = post(self, part, "".join(strings))
        self._collect_links(part, text, sink)
        return (text,)

    def _run(self, part: Part, ctx: dict, sink: Sink) -> List[str]:
        template = part.template
        self.current_rendering_part = RenderingPart(part, sink)
        try:
            try:
                out, count = [], sandbox.current().output
                pieces = template.root_render_func(template.new_context(ctx, True))
                for piece in pieces:
                    out.append(piece)
                    count(len(piece))
                return out
            except sandbox.TemplateLimit as exc:
                frame = pieces.gi_frame   # still there: the letter grew too long at this piece
                if frame is None:
                    template.environment.handle_exception()
                line = template.get_corresponding_lineno(frame.f_lineno)
                raise self._problem("template_limit", part, line, exc.message, exc.hint) from None
            except Exception:  # noqa: BLE001 - Jinja rewrites the traceback to template lines
                template.environment.handle_exception()
        except UndefinedError as exc:
            msg = exc.message or str(exc)
            found = re.search(r"'([^']+)' is undefined|has no attribute '([^']+)'", msg)
            field = (found.group(1) or found.group(2)) if found else msg
            error = self._problem(
                "undefined_field", part, template_line(exc),
                _("the field %(field)r has no value for this letter (%(msg)s)",
                  field=field, msg=msg),
                _("give every letter a value for %(field)r (a column of that name in the "
                  "recipient list, or a setting), or correct the name in the template", field=field), field)
            error.field = field
            raise error from exc
        except sandbox.SecurityError as exc:
            raise self._problem("template_unsafe", part, template_line(exc),
                                _("the template reaches for something templates may not use "
                                  "(%(exc)s)", exc=exc), _(UNSAFE_HINT)) from None
        except sandbox.TemplateLimit as exc:
            raise self._problem("template_limit", part, template_line(exc), exc.message,
                                exc.hint) from None
        except LetterpressError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. an image that cannot be read
            raise self._problem("render_failed", part, template_line(exc),
                                _("the letter could not be filled in (%(value)s)",
                                  value=exc or type(exc).__name__),
                                _("check the values given to the fields used there")) from exc
        finally:
            self.current_rendering_part = None

    def _collect_links(self, part: Part, text: str, sink: Sink) -> None:
        if "rIdLpu" in text:
            urls = {rid: url for url, rid in self._urls.items()}
            for rid in set(re.findall(r"rIdLpu\d+", text)) & set(urls):
                sink.relate(part.name, RT_HYPERLINK, urls[rid], True, rid)

    def _render_core(self, ctx: dict) -> Tuple[str, tuple]:
        name, xml, props = self._core
        for marker, label, template, _props in props:
            try:
                value = template.render(ctx)
            except UndefinedError as exc:
                raise TemplateProblemError(
                    _("a field has no value for this letter (%(message)s)", message=exc.message), code="undefined_field",
                    where=Where(file=self.name, part=label),
                    hint=_("give every letter that value, or edit the document properties")) from exc
            except sandbox.SecurityError as exc:
                raise TemplateProblemError(
                    _("the template reaches for something templates may not use (%(exc)s)",
                      exc=exc),
                    code="template_unsafe", where=Where(file=self.name, part=label),
                    hint=_(UNSAFE_HINT)) from None
            except sandbox.TemplateLimit as exc:
                raise TemplateProblemError(exc.message, code="template_limit", hint=exc.hint,
                                           where=Where(file=self.name, part=label)) from None
            xml = xml.replace(marker, dz.xml_escape(value))
        return name, (xml,)

    def _problem(self, code: str, part: Part, lineno: Optional[int], message: str, hint: str,
                 focus: Optional[str] = None) -> TemplateProblemError:
        return problem(self.name, code, part, lineno, message, hint, focus)

    # -- writing ------------------------------------------------------------------------
    def part_member(self, name: str, pieces: tuple) -> Tuple[dz.Member, bytes]:
        """The zip member of a rendered part; the last letter's when the pieces are equal
        (a part whose fields did not change is not joined or compressed again)."""
        last = self._written.get(name)
        if last is not None and (last[0] is pieces or last[0] == pieces):
            return last[1]
        part = self._by_name.get(name)
        if part is None:   # document properties: their text, compressed
            member = dz.compress(name, pieces[0].encode("utf-8", "replace"), self.compresslevel,
                                 self._stamp)
        else:
            member = part.member(pieces, self.compresslevel, self._stamp)
        self._written[name] = (pieces, member)
        return member

    def _zip(self, letter: RenderedLetter) -> List[bytes]:
        level, stamp = self.compresslevel, self._stamp
        body = self._body
        members = [body.member(letter.pieces, level, stamp) if body.dynamic
                   else self.part_member(body.name, letter.pieces)]   # a body without tags
        members += [self.part_member(name, pieces) for name, pieces in letter.parts]
        if not letter.rels:     # the parts' relationships as in the template
            members += [original for original in self._optional.values() if original]
            return dz.zip_pieces(self._head, self._head_cd, len(self._static), members)
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


def _rebuild(data: bytes, name: str, level: int, filters: dict,
             limits: Optional[sandbox.Limits] = None) -> CompiledTemplate:
    return CompiledTemplate(data, name=name, compresslevel=level, filters=filters, limits=limits)


def _bare_name(what: str) -> str:
    """``__class__`` of ``.__class__``, ``['__class__']`` or ``attr('__class__')``."""
    return re.sub(r"^(?:attr\(|[.\[(])+['\"]?|['\"]?[\])]+$", "", what)
