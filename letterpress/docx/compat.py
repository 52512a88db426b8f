"""docxtpl's own methods on a compiled template, so that code written for docxtpl ports.

``replace_pic``, ``replace_media``, ``replace_embedded``, ``replace_zipname``,
``reset_replacements`` and ``allow_missing_pics`` (recorded in
:class:`~letterpress.docx.replace.Replacements`), ``get_docx``/``docx`` and ``new_subdoc``
(docxtpl's sub-documents: the template's python-docx document, read again by the fast
path when it changed) and ``get_undeclared_template_variables``.
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Mapping, Optional

from letterpress.docx import subdocs
from letterpress.docx.load import load
from letterpress.docx.package import NotDocx, Package
from letterpress.errors import TemplateProblemError, Where
from letterpress.i18n import _


class DocxtplMethods:
    """Mixed into :class:`~letterpress.docx.template.CompiledTemplate`."""

    # set by CompiledTemplate
    replacements: Any
    name: str
    engine: str
    loaded: Any
    _data: bytes
    _docx: Any
    _docx_print: Optional[str]
    _written: dict
    _laid: dict

    if TYPE_CHECKING:  # pragma: no cover - CompiledTemplate's
        def _all_variables(self) -> tuple: ...

    def get_undeclared_template_variables(self, jinja_env: Any = None,
                                          context: Optional[Mapping[str, Any]] = None) -> set:
        """docxtpl's method: the names the template uses that it does not set itself (loop
        variables excluded), less those in ``context`` when it is given. ``jinja_env``
        is accepted for docxtpl's signature; its filters do not change the names."""
        names = set(self._all_variables()[0])
        return names - set(context) if context is not None else names

    def replace_pic(self, embedded_file: str, dst_file: Any) -> None:
        """Swap the picture Word names ``embedded_file`` (its name, title or description)
        for ``dst_file`` (a path, a file object or bytes) in the body, headers and
        footers of the letters rendered from now on (docxtpl's method)."""
        self.replacements.pic(embedded_file, dst_file)

    def replace_media(self, src_file: Any, dst_file: Any) -> None:
        """Swap a picture found by its content (``src_file``) for ``dst_file``."""
        self.replacements.by_content("media", src_file, dst_file)

    def replace_embedded(self, src_file: Any, dst_file: Any) -> None:
        """Swap an embedded file found by its content (``src_file``) for ``dst_file``."""
        self.replacements.by_content("embedded", src_file, dst_file)

    def replace_zipname(self, zipname: str, dst_file: Any) -> None:
        """Swap the zip member ``zipname`` (e.g. ``word/embeddings/Sheet1.xlsx``)."""
        self.replacements.zipname(zipname, dst_file)

    def reset_replacements(self) -> None:
        """Forget every ``replace_*`` asked for so far."""
        self.replacements.reset()

    @property
    def allow_missing_pics(self) -> bool:
        return self.replacements.allow_missing_pics

    @allow_missing_pics.setter
    def allow_missing_pics(self, value: bool) -> None:
        self.replacements.allow_missing_pics = bool(value)

    def get_docx(self) -> Any:
        """The template as a python-docx ``Document`` (docxtpl's method). Changes made to it
        (by a sub-document's pictures, styles and numbering, or by hand) are read again
        before the next letter is rendered."""
        if self._docx is None:
            import docx

            subdocs.restore_namespaces()
            self._docx = docx.Document(io.BytesIO(self._data))
            self._docx_print = subdocs.fingerprint(self._docx)
        return self._docx

    @property
    def docx(self) -> Any:
        return self.get_docx()

    def new_subdoc(self, docpath: Any = None) -> Any:
        """A sub-document to put in a letter with ``{{p subdoc }}`` (docxtpl's method): a
        new empty one to fill with python-docx, or the .docx at ``docpath`` (a path or file
        object) with its pictures, styles and numbering."""
        from docxtpl.subdoc import Subdoc

        subdocs.restore_namespaces()
        return Subdoc(self, docpath)

    def _sync_docx(self) -> None:
        """Read the python-docx document again if it changed since the last letter."""
        now = subdocs.fingerprint(self._docx)
        if now != self._docx_print:
            self._docx_print = now
            data = subdocs.save(self._docx)
            if self.engine == "docxtpl" or self.loaded is None:
                return   # docxtpl reads the python-docx document itself
            try:
                self.loaded = load(self, Package(data))
            except NotDocx as exc:   # python-docx wrote it: should not happen
                raise TemplateProblemError(_("the changed template cannot be read (%(exc)s)",
                                             exc=exc), code="bad_template",
                                           where=Where(file=self.name)) from None
            self._written.clear()
            self._laid.clear()

    def save(self, filename: Any, *args: Any, **kwargs: Any) -> None:
        """docxtpl's ``save``: the letter rendered last (before any, the template with its
        replacements) to a path (written atomically) or a binary file object."""
        letter = getattr(self, "_last_letter", None)
        data = letter.to_bytes(self) if letter is not None else self._replaced_template()
        if hasattr(filename, "write"):
            filename.write(data)
            return
        from letterpress.docx.letter import write_file
        from letterpress.files import atomic_path

        with atomic_path(filename) as tmp:
            write_file(tmp, data)

    def _replaced_template(self) -> bytes:
        """The template itself with the ``replace_*`` asked for (docxtpl's save unrendered)."""
        import zipfile

        replaced = dict(self.replacements.resolve(self.loaded, self.name)) \
            if self.loaded is not None and self.replacements else {}
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(self._data)) as zin, \
                zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                zout.writestr(item, replaced.get(item.filename) or zin.read(item))
        return out.getvalue()
