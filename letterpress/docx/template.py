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

docxtpl's own methods work too (:mod:`letterpress.docx.compat`): ``replace_pic``,
``replace_media``, ``replace_embedded``, ``replace_zipname``, ``new_subdoc``, ``get_docx``,
``get_undeclared_template_variables``, ``render(context, jinja_env)`` and ``save``; a
template the fast path cannot read is rendered by docxtpl itself
(:mod:`letterpress.docx.fallback`, see :attr:`CompiledTemplate.fallback_reason`).

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
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from jinja2 import StrictUndefined, UndefinedError

from letterpress.docx import fallback, sandbox, subdocs
from letterpress.docx import zipwriter as dz
from letterpress.docx.compat import DocxtplMethods
from letterpress.docx.images import RenderingPart, Sink
from letterpress.docx.letter import _LIVE, RenderedLetter, write_file
from letterpress.docx.load import Loaded, load
from letterpress.docx.locate import problem, template_line, variables
from letterpress.docx.merge import MergedDocument
from letterpress.docx.package import RT_HYPERLINK, NotDocx, Package
from letterpress.docx.parts import Part, finalize, post
from letterpress.docx.plugins import JinjaAdditions, additions_of
from letterpress.docx.replace import Replacements
from letterpress.docx.writing import LetterZipping
from letterpress.errors import InputError, LetterpressError, TemplateProblemError, Where
from letterpress.files import PathLike
from letterpress.i18n import N_, _

__all__ = ["CompiledTemplate", "RenderedLetter", "MergedDocument", "write_file"]

_RECENT: Dict[tuple, "CompiledTemplate"] = {}   # the last templates read from files, kept
_KEEP = 2
UNSAFE_HINT = N_("a template is a letter, not a program: it may use the fields (columns and "
               "settings) and simple tags, not Python's internals; remove that tag")
DEFAULT_LEVEL = 1   # zlib level for the parts written per letter: fastest, a little larger
#: Render with docxtpl a template whose reading fails in the fast path (tests turn it off
#: to see such a failure as the bug it is).
FALLBACK_ON_ERROR = True


class CompiledTemplate(DocxtplMethods, LetterZipping):
    """A Word template read, patched and compiled once, for rendering many letters.

    ``source`` is a path or the bytes of a .docx; ``name`` is how errors name it
    (default: the path). ``filters``, ``globals`` and ``tests`` add Jinja filters, global
    names and tests (docxtpl's ``jinja_env``; see :mod:`letterpress.docx.plugins`).
    ``compresslevel`` is the zlib level for the parts written per letter. ``engine``
    is "auto" (the fast path, docxtpl itself for a template it cannot do) or "docxtpl".
    :meth:`from_file` gives the template of a path compiled once (checking a batch and
    rendering it share one).
    """

    def __init__(self, source: Union[PathLike, bytes], *, name: Optional[str] = None,
                 compresslevel: int = DEFAULT_LEVEL,
                 filters: Optional[Mapping[str, Callable]] = None,
                 globals: Optional[Mapping[str, Any]] = None,
                 tests: Optional[Mapping[str, Callable]] = None,
                 engine: str = "auto",
                 limits: Optional[sandbox.Limits] = None, jinja_env: Any = None) -> None:
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
        if engine not in ("auto", "docxtpl"):
            raise ValueError(f"engine must be 'auto' or 'docxtpl', not {engine!r}")
        self._data = data
        self.jinja = JinjaAdditions.of(filters, globals, tests)
        if jinja_env is not None:   # docxtpl's environment: its filters, globals and tests
            self.jinja = self.jinja.merge(additions_of(jinja_env))
        self.key = hashlib.sha1(data).hexdigest()
        self.compresslevel, self.engine = compresslevel, engine
        self.current_rendering_part: Optional[RenderingPart] = None
        self._urls: Dict[str, str] = {}
        self._env = self.jinja.apply(sandbox.environment(
            autoescape=True, undefined=StrictUndefined, finalize=finalize, limits=limits))
        self._prop_env = self.jinja.apply(sandbox.environment(
            undefined=StrictUndefined, finalize=finalize, limits=limits))
        self._written: Dict[str, tuple] = {}   # part -> (pieces, member) of the last letter
        self.replacements = Replacements()
        self._docx: Any = None            # python-docx's Document, once get_docx() is asked
        self._docx_print: Optional[str] = None
        self._laid: Dict[tuple, Tuple[bytes, bytes, int]] = {}
        self._fallback: Optional[Tuple[str, dict]] = None   # see fallback_reason
        self._last_letter: Optional[RenderedLetter] = None
        self.loaded: Optional[Loaded] = None
        self._load(data)
        _LIVE[self.key] = self
        if not self.jinja and compresslevel == DEFAULT_LEVEL and engine == "auto" \
                and limits is None:
            _RECENT.pop((self.key, self.name), None)
            _RECENT[(self.key, self.name)] = self
            while len(_RECENT) > _KEEP:
                del _RECENT[next(iter(_RECENT))]

    def _load(self, data: bytes) -> None:
        try:
            package = Package(data)
        except NotDocx as exc:
            raise InputError(_("the template cannot be used: %(exc)s", exc=exc),
                             code="bad_template", where=Where(file=self.name),
                             hint=exc.hint) from None
        if self.engine == "docxtpl":
            self._fallback = (N_("docxtpl was asked for"), {})
            return
        try:
            self.loaded = load(self, package)
        except (LetterpressError, NotDocx):
            raise
        except Exception as exc:  # noqa: BLE001 - a document the fast path cannot read
            if not FALLBACK_ON_ERROR:
                raise
            self._fallback = (N_("the fast renderer cannot read this template (%(error)s)"),
                              {"error": f"{type(exc).__name__}: {exc}"})
            self.loaded = None

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
        return (_rebuild, (self._data, self.name, self.compresslevel, self.jinja, self.engine,
                           self.replacements, self._env.limits))

    @property
    def fast_loaded(self) -> Loaded:
        """What the fast path read (an error for a template docxtpl renders)."""
        if self.loaded is None:
            raise ValueError("this template is rendered by docxtpl, not the fast path")
        return self.loaded

    @property
    def fallback_reason(self) -> Optional[str]:
        """Why letters of this template are rendered by docxtpl itself (None: the fast path)."""
        return _(self._fallback[0], **self._fallback[1]) if self._fallback else None

    @property
    def fast(self) -> bool:
        """Whether letters are rendered by the fast path (else by docxtpl: slower)."""
        return self._fallback is None

    def notice(self) -> Optional[str]:
        """One line for the user when this template is rendered by docxtpl, else None."""
        if self._fallback is None:
            return None
        return _("%(name)s: rendered by docxtpl itself, which is slower, because %(reason)s",
                 name=self.name, reason=self.fallback_reason)

    # -- public API -----------------------------------------------------------------------
    def build_url_id(self, url: str) -> str:
        """A hyperlink's relationship id: ``RichText(..., url_id=tpl.build_url_id(url))``."""
        return self._urls.setdefault(url, f"rIdLpu{len(self._urls) + 1}")

    def variables(self) -> Dict[str, List[str]]:
        """Fields the template needs from the context, each with the places that use it.

        ``{"name": ["paragraph 3: 尊敬的{{ name }}…", "header 1, paragraph 1: ..."]}``.
        Loop variables and names set inside the template are not fields; nor are names
        used only where a missing value is allowed (``x|default(...)``, ``x is defined``
        and what such a test guards), which :meth:`optional_variables` gives. The names
        are those of docxtpl's ``get_undeclared_template_variables``, plus any used in the
        footnotes or document properties (which rendering needs as well).
        """
        found = self._all_variables()
        return {k: v for k, v in found[0].items() if k not in found[1]}

    def optional_variables(self) -> Dict[str, List[str]]:
        """Fields used only where they may be missing (``default``, ``is defined``)."""
        found = self._all_variables()
        return {k: v for k, v in found[0].items() if k in found[1]}

    def _all_variables(self) -> tuple:
        cached = self.__dict__.get("_variables")
        if cached is None or cached[0] is not self.loaded:
            if self.loaded is None:
                names = fallback.undeclared(self._data, self._env)
                found: tuple = ({n: ["the document"] for n in sorted(names)}, frozenset())
            else:
                found = variables(self._env, self.loaded.parts, self._prop_env,
                                  self.loaded.core)
            cached = self.__dict__["_variables"] = (self.loaded, found)
        return cached[1]

    def unsafe_places(self) -> List[Tuple[str, str]]:
        """(place, tag) for each tag that reaches for what templates may not use (found
        without rendering): ``[("paragraph 4 (“{{ cycler.__init__… }}”)", ".__init__")]``."""
        found = []
        for part in (p for p in self.loaded.parts if p.dynamic) if self.loaded else ():
            for lineno, what in sandbox.unsafe_uses(part.parsed(self._env)):
                place, text = part.describe(lineno, _bare_name(what))
                found.append((_("%(place)s (“%(text)s”)", place=place, text=text) if text
                              else place, what))
        core = self.loaded.core if self.loaded else None
        for _marker, label, _tpl, text in core[2] if core else ():
            found += [(label, what) for _, what in sandbox.unsafe_uses(self._prop_env.parse(text))]
        return found

    def uses(self, name: str) -> bool:
        """Whether the template uses the field ``name`` (worked out once per template)."""
        return name in self._all_variables()[0]

    # -- rendering ----------------------------------------------------------------------
    def render(self, context: Mapping[str, Any], jinja_env: Any = None,
               autoescape: bool = True) -> "RenderedLetter":
        """Render one letter from ``context`` (field name -> value), within the work one
        letter may do (:class:`letterpress.docx.sandbox.Limits`).

        ``jinja_env`` and ``autoescape`` are accepted for docxtpl's signature: filters,
        globals and tests of a ``jinja_env`` are added to this template's (once);
        autoescape stays on (values come out as typed)."""
        with sandbox.limits(self._env.limits):
            return self._render(context, jinja_env)

    def _render(self, context: Mapping[str, Any], jinja_env: Any) -> "RenderedLetter":
        if jinja_env is not None:
            self._adopt(jinja_env)
        if self._docx is not None:
            self._sync_docx()
        replaced = self.replacements.resolve(self.loaded, self.name) if self.loaded \
            and self.replacements else ()
        if self.loaded is None:
            self._last_letter = fallback.render(self, context)
            return self._last_letter
        loaded = self.loaded
        ctx, sink = dict(self._env.globals), Sink()   # a shared context: no copy per part
        ctx.update(context)
        body = loaded.body
        pieces = self._render_part(body, ctx, sink) if body.dynamic else loaded.const_body
        parts = []
        for part in loaded.dynamic:
            if not part.dynamic:   # a header or footer with a picture but no tags
                parts.append((part.name, part.const))
                continue
            key, found = part.memo(ctx)
            if found is None:
                before = len(sink)
                found = self._render_part(part, ctx, sink)
                part.remember(key if len(sink) == before else None, found)
            parts.append((part.name, found))
        if loaded.core:
            parts.append(self._render_core(ctx))
        rels = tuple((k[0], rid, k[1], k[2], k[3]) for k, rid in sink.rels.items())
        letter = RenderedLetter(self.key, pieces or (), tuple(parts), rels,
                                tuple(sink.media.items()), self, replaced, loaded)
        self._last_letter = letter   # for docxtpl's tpl.save(path)
        return letter

    def _adopt(self, env: Any) -> None:
        """Take the custom filters, globals and tests of docxtpl's ``jinja_env``."""
        merged = self.jinja.merge(additions_of(env))
        if merged == self.jinja:
            return
        self.jinja = merged
        merged.apply(self._env)
        merged.apply(self._prop_env)
        self.__dict__.pop("_variables", None)
        self._written.clear()
        self._load(self._data if self._docx is None else subdocs.save(self._docx))

    def trial(self, context: Mapping[str, Any]) -> None:
        """Render one letter only to find its problems (raised as :meth:`render` raises them),
        leaving no trace: the next letter renders as if this one had not been."""
        parts = self.loaded.parts if self.loaded else ()
        saved = [(p, p.checked, p.tree, p._last) for p in parts]
        try:
            self.render(context)
        finally:
            for part, checked, tree, last in saved:
                part.checked, part.tree, part._last = checked, tree, last

    def render_bytes(self, context: Mapping[str, Any]) -> bytes:
        """Render one letter and return the .docx file's bytes."""
        return self.render(context).to_bytes(self)

    def render_to(self, context: Mapping[str, Any], path: PathLike) -> "RenderedLetter":
        """Render one letter, write it to ``path`` (atomically) and return it."""
        letter = self.render(context)
        letter.save(path, self)
        return letter

    def _render_part(self, part: Part, ctx: dict, sink: Sink) -> tuple:
        strings = self._run(part, ctx, sink)
        fast = part.assemble(strings)
        if fast is not None:
            pieces, values = fast
            self._collect_links(part, values, sink)
            return pieces
        first = not part.checked
        text = post(self, part, "".join(strings))
        if first:   # the first letter checked the part: written as every later one is
            again = part.assemble(strings)
            if again is not None and part.text(again[0]) == text:
                self._collect_links(part, again[1], sink)
                return again[0]
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
                raise   # (handle_exception always raises)
        except UndefinedError as exc:
            msg = exc.message or str(exc)
            found = re.search(r"'([^']+)' is undefined|has no attribute '([^']+)'", msg)
            field = (found.group(1) or found.group(2)) if found else msg
            error = self._problem(
                "undefined_field", part, template_line(exc),
                _("the field %(field)r has no value for this letter (%(msg)s)",
                  field=field, msg=msg),
                _("give every letter a value for %(field)r (a column of that name in the "
                  "recipient list, or a setting), or correct the name in the template",
                  field=field), field)
            error.field = field   # type: ignore[attr-defined]
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
        name, xml, props = self.fast_loaded.core or ("", "", ())
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


def _rebuild(data: bytes, name: str, level: int, jinja: "JinjaAdditions", engine: str,
             replacements: "Replacements",
             limits: Optional[sandbox.Limits] = None) -> CompiledTemplate:
    tpl = CompiledTemplate(data, name=name, compresslevel=level, filters=dict(jinja.filters),
                           globals=dict(jinja.globals), tests=dict(jinja.tests), engine=engine,
                           limits=limits)
    tpl.replacements = replacements
    return tpl


def _bare_name(what: str) -> str:
    """``__class__`` of ``.__class__``, ``['__class__']`` or ``attr('__class__')``."""
    return re.sub(r"^(?:attr\(|[.\[(])+['\"]?|['\"]?[\])]+$", "", what)
