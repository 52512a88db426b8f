"""The canvas every PDF of ours is drawn on: reportlab's, holding next to nothing per page.

reportlab keeps every page's drawing operators as text until ``save()``, and each
finished page as a dozen Python objects (about 4.5 KB a page: 56 MiB for the 12,500
pages of a district's slips), then joins the whole file in memory before writing it.
:class:`CompactCanvas` writes the same bytes while holding, per finished page, one
small object: its compressed stream waits in an unnamed spool file, and the page's
dictionary is made again from a prototype shared by the pages drawn alike when the
file is formatted, object by object, straight to disk.
"""
from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import types
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

from reportlab import rl_config
from reportlab.pdfbase import pdfdoc
from reportlab.pdfbase.pdfdoc import (
    NoEncryption,
    PDFArray,
    PDFDictionary,
    PDFName,
    PDFObject,
    PDFPage,
    PDFStream,
    PDFZCompress,
)
from reportlab.pdfgen.canvas import Canvas

from letterpress.models import BatchInfo
from letterpress.slips.fonts import FontSet


@contextlib.contextmanager
def binary_streams() -> Iterator[None]:
    """Compressed PDF streams without reportlab's ASCII85 layer (smaller, much faster).

    This switches reportlab's process-wide setting while the block runs: do not
    write PDFs from several threads at once.
    """
    saved = rl_config.useA85
    rl_config.useA85 = 0
    try:
        yield
    finally:
        rl_config.useA85 = saved


class SpooledStream(PDFObject):
    """A finished page's compressed content stream, kept in its canvas's spool file (not in
    memory) until the PDF is written; formatted as the :class:`PDFStream` reportlab would
    have made of it."""

    __RefOnly__ = 1

    def __init__(self, spool, at: int, length: int) -> None:
        self._spool, self._at, self._length = spool, at, length

    @classmethod
    def of(cls, spool, data: bytes) -> "SpooledStream":
        """``data`` (compressed already) added to the end of ``spool``."""
        spool.seek(0, os.SEEK_END)
        at = spool.tell()
        spool.write(data)
        return cls(spool, at, len(data))

    @property
    def content(self) -> bytes:
        self._spool.seek(self._at)
        return self._spool.read(self._length)

    def format(self, document) -> bytes:
        filters = PDFDictionary({"Filter": PDFArray([PDFName(PDFZCompress.pdfname)])})
        return PDFStream(filters, self.content).format(document)


class FinishedPage(PDFObject):
    """A finished page: its stream in the spool and a prototype (the same for every page
    drawn alike) that becomes its page dictionary when the file is formatted."""

    __RefOnly__ = 1

    def __init__(self, prototype: PDFPage, contents: SpooledStream) -> None:
        self.prototype, self.contents = prototype, contents

    def format(self, document) -> bytes:
        page = copy.copy(self.prototype)
        page.Contents = self.contents
        return page.format(document)


#: The attributes a page finished by reportlab's ``showPage`` has, and those of them that
#: must be empty for it to be kept as a :class:`FinishedPage` (the rest are alike or set aside).
_PAGE_KEYS = frozenset(PDFPage.__NoDefault__) | {
    "pagewidth", "pageheight", "hasImages", "compression", "stream", "_colorsUsed",
    "ExtGState", "XObjects", "_shadingUsed", "__InternalName__"}
_EMPTY = ("Annots", "_colorsUsed", "_shadingUsed", "ExtGState", "Dur", "CropBox", "ArtBox",
          "BleedBox", "TrimBox", "Resources", "Thumb", "B", "Hid", "AA", "PieceInfo",
          "LastModified", "SeparationInfo", "ID", "PZ", "Parent", "MediaBox")


def _streaming_format(sink) -> Callable:
    """reportlab's ``PDFDocument.format`` (the same code), with each object written to
    ``sink`` as it is formatted instead of the whole file joined in memory first."""

    def to_sink(pdf_version):
        collector = pdfdoc.PDFFile(pdf_version)
        sink.write(b"".join(collector.strings))      # the header, written already
        collector.strings, collector.write = [], sink.write
        return collector

    original = pdfdoc.PDFDocument.format
    return types.FunctionType(original.__code__, {**vars(pdfdoc), "PDFFile": to_sink},
                              original.__name__, original.__defaults__, original.__closure__)


class CompactCanvas(Canvas):
    """A canvas that holds no finished page in memory and writes the PDF as it goes.

    A finished page's stream is compressed when the page ends (zlib at reportlab's
    level, the same ``/Filter``) and kept in an unnamed spool file beside ``path``; the
    page itself becomes a :class:`FinishedPage`. ``save()`` writes each object to
    ``path`` as reportlab formats it. The file's bytes are what reportlab alone would
    write.
    """

    def __init__(self, path, **kwargs) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        self._sink = open(path, "wb")
        self._spool = tempfile.TemporaryFile(dir=folder)   # gone with the process, whatever
        self._prototypes: Dict[tuple, PDFPage] = {}
        self._last: Optional[SpooledStream] = None
        super().__init__(self._sink, **kwargs)
        self._doc.format = types.MethodType(_streaming_format(self._sink), self._doc)

    def showPage(self) -> None:
        super().showPage()
        self._last = None
        pages = self._doc.Pages.pages
        page = pages[-1]
        if (not page.compression or not page.stream or page.Contents or rl_config.useA85
                or self._doc.encrypt.__class__ is not NoEncryption):
            return
        stream = page.stream
        data = stream.encode("utf8") if isinstance(stream, str) else stream
        self._last = SpooledStream.of(self._spool, PDFZCompress.encode(data))
        pages[-1] = self._finished(page, self._last)

    def put_page(self, content: bytes, forms: Sequence[str]) -> None:
        """End a page nothing was drawn on, with ``content`` (a stream ``showPage`` made
        before, compressed) as its stream and ``forms`` as the forms it shows."""
        self._formsinuse = list(forms)
        Canvas.showPage(self)
        pages = self._doc.Pages.pages
        self._last = SpooledStream.of(self._spool, content)
        pages[-1] = self._finished(pages[-1], self._last)

    def last_stream(self) -> Optional[bytes]:
        """The compressed stream of the page that just ended (None if it was not kept so)."""
        return self._last.content if self._last is not None else None

    def _finished(self, page: PDFPage, contents: SpooledStream):
        """``page`` as a :class:`FinishedPage` in the document (reportlab registered it by
        name when it ended) when it is like the others, only its stream differing;
        ``page`` itself, stream set, when it has anything of its own."""
        state = vars(page)
        if set(state) - _PAGE_KEYS or any(state.get(k) for k in _EMPTY) or \
                (page.Trans is not None and page.Trans.dict):
            page.Contents, page.stream = contents, None
            return page
        xobjects = page.XObjects
        forms = tuple((k, getattr(v, "name", v)) for k, v in xobjects.dict.items()) \
            if xobjects is not None else None
        key = (page.pagewidth, page.pageheight, page.Rotate, page.hasImages, forms)
        prototype = self._prototypes.get(key)
        if prototype is None:
            prototype = self._prototypes[key] = copy.copy(page)
            del prototype.__InternalName__
            prototype.Contents = prototype.stream = None
        finished = FinishedPage(prototype, contents)
        name = page.__InternalName__
        finished.__InternalName__ = name
        self._doc.idToObject[name] = finished
        return finished

    def save(self) -> None:
        try:
            super().save()
        finally:
            self.close()

    def close(self) -> None:
        """Let go of the file and the spool (``save`` does; a failed write calls it)."""
        self._sink.close()
        self._spool.close()


def new_canvas(path, pagesize: Tuple[float, float], fs: FontSet, info: BatchInfo,
               subject: str) -> Canvas:
    """A canvas whose initial font is embedded (reportlab's default would add Helvetica)."""
    canvas = CompactCanvas(str(path), pagesize=pagesize, pageCompression=1,
                           initialFontName=fs.latin, initialFontSize=10, lang=info.lang)
    canvas.setTitle(f"{info.title} - {subject}" if info.title else subject)
    canvas.setAuthor(info.org or "letterpress")
    canvas.setCreator("letterpress")
    return canvas
