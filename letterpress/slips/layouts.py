"""Slip layouts as data: page size, grid of slips, margins, cut marks; and the
canvas every PDF of ours starts from.

One drawing function (:func:`letterpress.slips.slips.draw_slip`) draws a slip into
a box of any size; a layout only says where the boxes are. Add a layout by
adding a :class:`Layout` to :data:`LAYOUTS`.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import types
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Sequence, Tuple

from reportlab import rl_config
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfdoc
from reportlab.pdfbase.pdfdoc import (
    NoEncryption,
    PDFArray,
    PDFName,
    PDFStream,
    PDFZCompress,
)
from reportlab.pdfgen.canvas import Canvas

from letterpress.errors import ConfigError
from letterpress.i18n import _
from letterpress.models import BatchInfo
from letterpress.slips.fonts import FontSet


@dataclass(frozen=True)
class Layout:
    """A page of ``columns`` x ``rows`` slips, in points (1/72 inch).

    The slips tile the page inside the margins edge to edge, so one cut
    separates two slips; ``cut_marks`` draws marks in the margins where the
    cuts go, and faint guides between the slips.
    """

    name: str
    page_width: float
    page_height: float
    columns: int
    rows: int
    margin_x: float
    margin_y: float
    cut_marks: bool
    padding: float = 4 * mm
    description: str = ""

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    @property
    def slip_width(self) -> float:
        return (self.page_width - 2 * self.margin_x) / self.columns

    @property
    def slip_height(self) -> float:
        return (self.page_height - 2 * self.margin_y) / self.rows

    @property
    def page_size(self) -> Tuple[float, float]:
        return (self.page_width, self.page_height)

    def box(self, index: int) -> Tuple[float, float, float, float]:
        """``(x, y, width, height)`` of slot ``index`` (0 = top left, row by row)."""
        col = index % self.columns
        row = (index // self.columns) % self.rows
        w, h = self.slip_width, self.slip_height
        x = self.margin_x + col * w
        y = self.page_height - self.margin_y - (row + 1) * h
        return x, y, w, h

    def boxes(self) -> Iterator[Tuple[float, float, float, float]]:
        for index in range(self.per_page):
            yield self.box(index)


A4 = (210 * mm, 297 * mm)

LAYOUTS: Dict[str, Layout] = {
    layout.name: layout for layout in (
        Layout("a4-8", A4[0], A4[1], 2, 4, 10 * mm, 10 * mm, True,
               description="8 slips on A4 (2 x 4), about 95 x 69 mm, with cut marks"),
        Layout("a4-4", A4[0], A4[1], 2, 2, 10 * mm, 10 * mm, True, padding=6 * mm,
               description="4 slips on A4 (2 x 2), about 95 x 138 mm, with cut marks"),
        Layout("label-100x150", 100 * mm, 150 * mm, 1, 1, 0, 0, False, padding=5 * mm,
               description="one 100 x 150 mm label a page, for thermal label printers"),
    )
}


def get(name: str) -> Layout:
    """The layout called ``name``, or :class:`ConfigError` listing the known ones."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ConfigError(_("unknown slip layout %(name)r", name=name), code="bad_layout",
                          hint=_("use one of %(choices)s", choices=", ".join(LAYOUTS))) from None


def draw_cut_marks(canvas, layout: Layout) -> None:
    """Marks in the margins where the cuts go, and faint dashed guides between slips."""
    if not layout.cut_marks:
        return
    left, right = layout.margin_x, layout.page_width - layout.margin_x
    bottom, top = layout.margin_y, layout.page_height - layout.margin_y
    xs = [left + i * layout.slip_width for i in range(layout.columns + 1)]
    ys = [bottom + i * layout.slip_height for i in range(layout.rows + 1)]
    gap, length = 1.5 * mm, min(layout.margin_x, layout.margin_y) - 3 * mm
    canvas.saveState()
    canvas.setStrokeGray(0)
    canvas.setLineWidth(0.3)
    path = canvas.beginPath()
    if length > 0:
        for x in xs:
            path.moveTo(x, top + gap)
            path.lineTo(x, top + gap + length)
            path.moveTo(x, bottom - gap)
            path.lineTo(x, bottom - gap - length)
        for y in ys:
            path.moveTo(left - gap, y)
            path.lineTo(left - gap - length, y)
            path.moveTo(right + gap, y)
            path.lineTo(right + gap + length, y)
    canvas.drawPath(path, stroke=1, fill=0)
    # Faint guides along the inner cuts, for scissors.
    canvas.setStrokeGray(0.72)
    canvas.setLineWidth(0.25)
    canvas.setDash(1.5, 2.5)
    guides = canvas.beginPath()
    for x in xs[1:-1]:
        guides.moveTo(x, bottom)
        guides.lineTo(x, top)
    for y in ys[1:-1]:
        guides.moveTo(left, y)
        guides.lineTo(right, y)
    canvas.drawPath(guides, stroke=1, fill=0)
    canvas.restoreState()


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


class SpooledStream(PDFStream):
    """A finished page's compressed content stream, kept in its canvas's spool file (not in
    memory) until the PDF is written."""

    def __init__(self, spool, data: bytes) -> None:
        spool.seek(0, os.SEEK_END)
        self._spool, self._at, self._length = spool, spool.tell(), len(data)
        spool.write(data)
        super().__init__()
        self.dictionary["Filter"] = PDFArray([PDFName(PDFZCompress.pdfname)])
        self.__Comment__ = "page stream"

    @property
    def content(self) -> bytes:
        self._spool.seek(self._at)
        return self._spool.read(self._length)

    @content.setter
    def content(self, value) -> None:   # PDFStream's own __init__ sets None
        if value is not None:
            raise AttributeError("a spooled stream is read-only")


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

    reportlab keeps every page's drawing operators as text until ``save()``, compresses
    them then, and joins the whole file in memory before writing it: for 100,000 slips
    that is hundreds of megabytes held. Here a finished page's stream is compressed when
    the page ends (zlib at reportlab's level, the same ``/Filter``) and kept in an unnamed
    spool file beside ``path``; ``save()`` writes each object to ``path`` as reportlab
    formats it. The file's bytes are what reportlab alone would write.
    """

    def __init__(self, path, **kwargs) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        self._sink = open(path, "wb")
        self._spool = tempfile.TemporaryFile(dir=folder)   # gone with the process, whatever
        super().__init__(self._sink, **kwargs)
        self._doc.format = types.MethodType(_streaming_format(self._sink), self._doc)

    def _spooled(self, data: bytes) -> SpooledStream:
        return SpooledStream(self._spool, data)

    def showPage(self) -> None:
        super().showPage()
        page = self._doc.Pages.pages[-1]
        stream = page.stream
        if (not page.compression or not stream or page.Contents or rl_config.useA85
                or self._doc.encrypt.__class__ is not NoEncryption):
            return
        data = stream.encode("utf8") if isinstance(stream, str) else stream
        page.Contents, page.stream = self._spooled(PDFZCompress.encode(data)), None

    def put_page(self, content: bytes, forms: Sequence[str]) -> None:
        """End a page nothing was drawn on, with ``content`` (a stream ``showPage`` made
        before, compressed) as its stream and ``forms`` as the forms it shows."""
        self._formsinuse = list(forms)
        Canvas.showPage(self)
        page = self._doc.Pages.pages[-1]
        page.Contents, page.stream = self._spooled(content), None

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
