"""docxtpl itself, for a template the fast path cannot render.

Used when :attr:`CompiledTemplate.fallback_reason <letterpress.docx.template.CompiledTemplate>`
says why (docxtpl was asked for, or the fast path cannot read the document). Letters
are the same as the fast path's where both can render them: docxtpl renders with an
environment from :mod:`letterpress.docx.sandbox` (sandboxed, values escaped, a missing
field an error, the template's filters), with the template's replacements, pictures
and sub-documents. It is slower: docxtpl reads the whole template again for each letter.
:class:`ComposedDocument` puts such letters in one document with docxcompose.
"""
from __future__ import annotations

import io
from typing import Any, Iterable, Mapping

from jinja2 import StrictUndefined, UndefinedError
from jinja2.exceptions import SecurityError, TemplateError

from letterpress.docx import sandbox
from letterpress.docx.locate import SYNTAX_HINT
from letterpress.docx.package import RT_HYPERLINK, Package, split_body
from letterpress.docx.parts import finalize
from letterpress.docx.sandbox import TemplateLimit
from letterpress.errors import LetterpressError, TemplateProblemError, Where
from letterpress.files import PathLike, atomic_path
from letterpress.i18n import _


class _Follow:
    """Our template's ``current_rendering_part`` while docxtpl renders: an ``InlineImage``
    made with our template adds its picture to docxtpl's part."""

    def __init__(self, docxtpl_template: Any) -> None:
        self._tpl = docxtpl_template

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tpl.current_rendering_part, name)


def environment(tpl) -> Any:
    """The sandboxed environment docxtpl renders ``tpl``'s letters with."""
    return tpl.jinja.apply(sandbox.environment(autoescape=True, undefined=StrictUndefined,
                                               finalize=finalize))


def source(tpl) -> bytes:
    """The template as it stands (with what sub-documents added to it)."""
    if tpl._docx is not None:
        from letterpress.docx import subdocs

        return subdocs.save(tpl._docx)
    return tpl._data


def render(tpl, context: Mapping[str, Any]):
    """One letter of ``tpl`` rendered by docxtpl, as a ``RenderedLetter`` holding its file."""
    from docxtpl import DocxTemplate

    from letterpress.docx import subdocs
    from letterpress.docx.letter import RenderedLetter
    from letterpress.docx.template import UNSAFE_HINT

    subdocs.restore_namespaces()

    doc = DocxTemplate(io.BytesIO(source(tpl)))
    doc.init_docx()
    for url, rid in tpl._urls.items():   # RichText links made with our build_url_id
        doc.docx.part.rels.add_relationship(RT_HYPERLINK, url, rid, is_external=True)
    r = tpl.replacements
    doc.allow_missing_pics = r.allow_missing_pics
    for name, data in r.pics.items():
        doc.replace_pic(name, io.BytesIO(data))
    doc.crc_to_new_media.update(r.media)
    doc.crc_to_new_embedded.update(r.embedded)
    doc.zipname_to_replace.update(r.zipnames)
    # document properties come out as typed, as on the fast path (docxtpl would escape them
    # with an autoescaping environment, and python-docx escape them again)
    doc.render_properties = lambda ctx, jinja_env=None: DocxTemplate.render_properties(
        doc, ctx, tpl._prop_env)
    tpl.current_rendering_part = _Follow(doc)
    try:
        doc.render(dict(context), jinja_env=environment(tpl))
        out = io.BytesIO()
        doc.save(out)
    except LetterpressError:
        raise
    except UndefinedError as exc:
        raise TemplateProblemError(
            _("a field has no value for this letter (%(message)s)", message=exc.message),
            code="undefined_field", where=Where(file=tpl.name),
            hint=_("give every letter a value for it, or correct the name in the template"),
        ) from exc
    except SecurityError as exc:
        raise TemplateProblemError(
            _("the template reaches for something templates may not use (%(exc)s)", exc=exc),
            code="template_unsafe", where=Where(file=tpl.name), hint=_(UNSAFE_HINT)) from exc
    except TemplateLimit as exc:
        raise TemplateProblemError(exc.message, code="template_limit", hint=exc.hint,
                                   where=Where(file=tpl.name)) from exc
    except TemplateError as exc:
        raise TemplateProblemError(
            _("the template's tags are not valid: %(message)s", message=exc),
            code="template_syntax", where=Where(file=tpl.name), hint=_(SYNTAX_HINT)) from exc
    except Exception as exc:  # noqa: BLE001 - e.g. an image that cannot be read
        raise TemplateProblemError(
            _("the letter could not be filled in (%(value)s)", value=exc),
            code="render_failed", where=Where(file=tpl.name),
            hint=_("check the values given to the fields used there")) from exc
    finally:
        tpl.current_rendering_part = None
    return RenderedLetter(tpl.key, (), template=tpl, whole=out.getvalue())


def undeclared(data: bytes, env: Any) -> set:
    """docxtpl's ``get_undeclared_template_variables`` of a template."""
    from docxtpl import DocxTemplate

    return set(DocxTemplate(io.BytesIO(data)).get_undeclared_template_variables(env))


def body_of(whole: bytes) -> str:
    """The content of ``<w:body>`` of a .docx file."""
    package = Package(whole)
    return split_body(package.blob(package.doc) or b"")[0][8:-9]


class ComposedDocument:
    """Letters docxtpl rendered, in one .docx (docxcompose appends each after a page break;
    the merged document keeps the first letter's headers and footers). Kept in memory:
    for the few templates the fast path cannot do."""

    def __init__(self, template, path: PathLike) -> None:
        self._tpl, self._path = template, path
        self._composer: Any = None
        self._count = 0
        self._done = False

    def __enter__(self) -> "ComposedDocument":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close() if exc_type is None else self.abort()

    def __len__(self) -> int:
        return self._count

    def add(self, letter) -> None:
        from docx import Document
        from docxcompose.composer import Composer

        from letterpress.docx import subdocs

        subdocs.restore_namespaces()

        if self._done:
            raise ValueError("this merged document is already closed")
        if letter.key != self._tpl.key:
            raise ValueError("the letter was rendered from a different template")
        document = Document(io.BytesIO(letter.to_bytes(self._tpl)))
        if self._composer is None:
            self._composer = Composer(document)
        else:
            self._composer.doc.add_page_break()
            self._composer.append(document)
        self._count += 1

    def extend(self, letters: Iterable) -> None:
        for letter in letters:
            self.add(letter)

    def close(self) -> None:
        if self._done:
            return
        if self._composer is None:
            self.abort()
            raise ValueError("no letters were added to the merged document")
        with atomic_path(self._path) as tmp:
            self._composer.save(str(tmp))
        self._done = True

    def abort(self) -> None:
        self._done, self._composer = True, None


