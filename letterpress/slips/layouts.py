"""Slip layouts as data: page size, grid of slips, margins, cut marks.

One drawing function (:func:`letterpress.slips.slips.draw_slip`) draws a slip into
a box of any size; a layout only says where the boxes are. Add a layout by
adding a :class:`Layout` to :data:`LAYOUTS`. The canvas the PDFs are drawn on is
:mod:`letterpress.slips.pdfcanvas`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, Tuple

from reportlab.lib.units import mm

from letterpress.errors import ConfigError
from letterpress.i18n import _


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
