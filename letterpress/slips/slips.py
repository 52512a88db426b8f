"""Delivery slips: one per household, with its QR code, drawn with reportlab.

A slip travels on the package. It shows the organisation and batch, the slip
number, the recipient's name and address, the package, notes and volunteer,
the QR code with its code printed underneath, and lines for the recipient's
signature and the handover time. It shows no health category or phone unless
``slip_fields`` asks for them (the run sheet has both).

Layouts are data (:mod:`letterpress.slips.layouts`); :func:`draw_slip` draws a slip
into a box of any size. Run sheets live in :mod:`letterpress.slips.runsheets` and
are re-exported here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple

from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from letterpress.choices import DEFAULT_LAYOUT
from letterpress.errors import ConfigError, InputError, Where
from letterpress.files import atomic_path
from letterpress.i18n import _
from letterpress.models import BatchInfo, Household, Progress
from letterpress.slips import pagecache, qr
from letterpress.slips.fonts import FontChoice, FontSet, register
from letterpress.slips.layouts import LAYOUTS, Layout, draw_cut_marks
from letterpress.slips.layouts import get as get_layout
from letterpress.slips.pagecache import PageCache
from letterpress.slips.pdfcanvas import binary_streams, new_canvas
from letterpress.slips.runsheets import write_runsheet  # noqa: F401  (part of this module's API)
from letterpress.slips.textfit import (
    ASCENT,
    Item,
    Line,
    Span,
    draw_lines,
    ellipsize,
    fit_block,
    width,
)

#: Fields that may be added to slips with ``slip_fields`` (personal data, off by default).
OPTIONAL_FIELDS = ("category", "phone")

LABELS: Dict[str, Dict[str, str]] = {
    "zh": {"package": "物资", "notes": "备注", "volunteer": "志愿者", "category": "类别",
           "phone": "电话", "signed": "签收人", "time": "时间", "sep": "："},
    "en": {"package": "Package", "notes": "Notes", "volunteer": "Volunteer",
           "category": "Category", "phone": "Phone", "signed": "Received by", "time": "Time",
           "sep": ": "},
}


def labels(lang: str) -> Dict[str, str]:
    """The slip and run-sheet words in ``lang`` (zh or en)."""
    return LABELS["en" if lang == "en" else "zh"]


def number_parts(seq: int, total: int, lang: str) -> Tuple[str, str, str]:
    """The slip number as (before, number, after): ``No. 12 / 40`` or ``第 12 户 / 共 40 户``."""
    if lang == "en":
        return "No. ", str(seq), f" / {total}"
    return "第 ", str(seq), f" 户 / 共 {total} 户"


@dataclass(frozen=True)
class Geometry:
    """Where the parts of a slip go in a box of a given size (offsets from its lower left)."""

    unit: float
    pad: float
    portrait: bool
    header_top: float          # y of the header's top edge
    rule_y: float
    qr_x: float
    qr_y: float
    qr_size: float
    code_y: float              # baseline of the code under the QR
    code_size: float
    text_x: float
    text_top: float
    text_w: float
    text_h: float
    sign_x: float
    sign_y: float              # baseline of the (first) signature line
    sign_w: float
    sign_rows: int
    sign_pitch: float


@functools.lru_cache(maxsize=16)
def geometry(w: float, h: float, pad: float, code_font: str, mono: bool) -> Geometry:
    """The slip's geometry for a ``w`` x ``h`` box (computed once per size)."""
    portrait = h > w * 1.1
    if portrait:
        unit = max(0.6, min(1.6, w / (72 * mm), h / (110 * mm)))
    else:
        unit = max(0.6, min(1.6, w / (95 * mm), h / (69 * mm)))
    header_top = h - pad
    header_h = 2 * 7.5 * unit * 1.25
    rule_y = header_top - header_h - 1.2 * mm
    gap = 2.5 * mm * unit
    code_h = 13 * unit
    if portrait:
        qr_size = min(w * 0.5, (rule_y - pad) * 0.45)
        box = qr_size
        qr_x = w - pad - box + _quiet_overlap(box, pad)
        qr_y = pad + code_h
        text_top = rule_y - gap
        text_bottom = qr_y + qr_size + gap
        text_x, text_w = pad, w - 2 * pad
        sign_x, sign_w, sign_rows = pad, qr_x - pad - gap, 2
        sign_y = pad + code_h + qr_size * 0.55
        sign_pitch = qr_size * 0.4
    else:
        col = min(39 * mm * unit, w * 0.42)
        qr_size = min(col, rule_y - 1 * mm - pad - code_h)
        qr_x = w - pad - qr_size + _quiet_overlap(qr_size, pad)
        qr_y = rule_y - 1 * mm - qr_size
        text_x = pad
        text_w = qr_x - pad - 1.5 * mm
        sign_rows, sign_pitch = 1, 0.0
        sign_x, sign_w, sign_y = pad, text_w, pad + 1.5 * mm
        text_top = rule_y - gap
        text_bottom = sign_y + 10 * unit
    code_w = qr_size - 2 * _quiet_overlap(qr_size, pad)
    cell = _code_cell(code_font, mono)
    code_size = max(7.0, min(13 * unit, code_w / (13 * cell)))
    code_y = qr_y - code_size * 0.85
    return Geometry(unit, pad, portrait, header_top, rule_y, qr_x, qr_y, qr_size, code_y,
                    code_size, text_x, text_top, text_w, text_top - text_bottom, sign_x,
                    sign_y, sign_w, sign_rows, sign_pitch)


def _quiet_overlap(qr_size: float, pad: float) -> float:
    """How far the QR's box may reach into the slip padding (keeping 1.5 mm clear).

    At most the quiet zone of a version 3 symbol (37 modules with the zone),
    so only light modules of household codes lie in the padding.
    """
    return max(0.0, min(4 * qr_size / 37.0, pad - 1.5 * mm))


def _code_cell(font: str, mono: bool) -> float:
    """Advance of one code character, in font sizes."""
    return stringWidth("0", font, 1) if mono else 0.74


@dataclass(frozen=True)
class SlipContext:
    """What every slip of a batch shares."""

    fonts: FontSet
    info: BatchInfo
    total: int
    package: str = ""
    fields: FrozenSet[str] = frozenset()

    @property
    def words(self) -> Dict[str, str]:
        return labels(self.info.lang)


def draw_slip(canvas: Canvas, box: Tuple[float, float, float, float], household: Household,
              ctx: SlipContext, pad: float = 4 * mm, static: Optional[str] = None) -> None:
    """Draw ``household``'s slip into ``box`` = (x, y, width, height), clipped to the box.

    ``static`` names a form made by :func:`define_static` for this box size;
    without it the parts every slip shares are drawn directly.
    """
    x, y, w, h = box
    fs = ctx.fonts
    g = geometry(w, h, pad, fs.code, fs.code_mono)
    canvas.saveState()
    clip = canvas.beginPath()
    clip.rect(x, y, w, h)
    canvas.clipPath(clip, stroke=0, fill=0)
    canvas.translate(x, y)
    if static:
        canvas.doForm(static)
    else:
        draw_static(canvas, ctx, g, w)

    # The slip number, right of the header.
    u = g.unit
    before, num, after = number_parts(household.seq, ctx.total, ctx.info.lang)
    small, big = 8 * u, 13 * u
    number_w = width(fs, before, small) + width(fs, num, big) + width(fs, after, small)
    number_line = Line(w - 2 * g.pad - number_w, big * ASCENT,
                       (Span(before, small, 0.35), Span(num, big, 0.0, True),
                        Span(after, small, 0.35)))
    draw_lines(canvas, fs, g.pad, g.header_top, [number_line])

    # Body: name, address, package, notes, volunteer.
    body = fit_block(fs, _items(household, ctx, u), g.text_w, g.text_h)
    draw_lines(canvas, fs, g.text_x, g.text_top, body)

    # The QR code, and its code under it for typing by hand.
    qr.draw(canvas, g.qr_x, g.qr_y, g.qr_size, qr.matrix(household.url))
    _draw_code(canvas, fs, g.qr_x + g.qr_size / 2, g.code_y, household.code, g.code_size)
    canvas.restoreState()


def draw_static(canvas: Canvas, ctx: SlipContext, g: Geometry, w: float) -> None:
    """What every slip shows the same: organisation, batch title, rule, signature lines."""
    fs = ctx.fonts
    u = g.unit
    before, num, after = number_parts(ctx.total, ctx.total, ctx.info.lang)
    widest = width(fs, before, 8 * u) + width(fs, num, 13 * u) + width(fs, after, 8 * u)
    head_w = w - 2 * g.pad - widest - 3 * mm
    hs = 7.5 * u
    head = [t for t in (ctx.info.org, ctx.info.title) if t]
    lines = [Line(0.0, hs * ASCENT + i * hs * 1.25, (Span(ellipsize(fs, t, hs, head_w), hs, 0.35),))
             for i, t in enumerate(head[:2])]
    draw_lines(canvas, fs, g.pad, g.header_top, lines)
    canvas.setStrokeGray(0.55)
    canvas.setLineWidth(0.5)
    canvas.line(g.pad, g.rule_y, w - g.pad, g.rule_y)
    _draw_signature(canvas, fs, g, ctx.words)


def define_static(canvas: Canvas, ctx: SlipContext, w: float, h: float, pad: float) -> str:
    """Make the shared parts of a ``w`` x ``h`` slip a form (drawn once, shown on every slip)."""
    g = geometry(w, h, pad, ctx.fonts.code, ctx.fonts.code_mono)
    name = f"slip-{round(w)}x{round(h)}"
    canvas.beginForm(name, 0, 0, w, h)
    draw_static(canvas, ctx, g, w)
    canvas.endForm()
    return name


def _items(household: Household, ctx: SlipContext, u: float) -> List[Item]:
    r = household.recipient
    words = ctx.words
    sep = words["sep"]
    items = [Item(r.name or r.id, 20 * u, 11 * u, 1, bold=True, suffix=r.honorific, scales=False),
             Item(r.address, 12.5 * u, 8 * u, 3, gap=0.3)]
    for key in OPTIONAL_FIELDS:
        value = getattr(r, key)
        if key in ctx.fields and value:
            items.append(Item(value, 9 * u, 6.5 * u, 1, label=words[key] + sep, gap=0.45))
    items += [
        Item(r.package or ctx.package, 9 * u, 6.5 * u, 2, label=words["package"] + sep,
             gap=0.45),
        Item(r.notes, 9 * u, 6.5 * u, 3, label=words["notes"] + sep, gap=0.3),
        Item(r.volunteer, 9 * u, 6.5 * u, 1, label=words["volunteer"] + sep, gap=0.3),
    ]
    return items


def _draw_code(canvas: Canvas, fs: FontSet, centre_x: float, baseline: float, code: str,
               size: float) -> None:
    """The household code centred at ``centre_x``, in even character cells."""
    text = canvas.beginText()
    text.setFillGray(0)
    text.setFont(fs.code, size)
    if fs.code_mono:
        text.setTextOrigin(centre_x - stringWidth(code, fs.code, size) / 2, baseline)
        text.textOut(code)
    else:
        cell = _code_cell(fs.code, False) * size
        left = centre_x - cell * len(code) / 2
        for i, ch in enumerate(code):
            adv = stringWidth(ch, fs.code, size)
            scale = min(100.0, 100.0 * cell * 0.96 / adv) if adv else 100.0
            text.setHorizScale(scale)
            text.setTextOrigin(left + i * cell + (cell - adv * scale / 100) / 2, baseline)
            text.textOut(ch)
    canvas.drawText(text)


def _draw_signature(canvas: Canvas, fs: FontSet, g: Geometry, words: Dict[str, str]) -> None:
    """签收人 ____ 时间 ____ (side by side, or in two rows on portrait slips)."""
    size = 8.5 * g.unit
    pairs = [(words["signed"], 0.58), (words["time"], 0.42)]
    lines: List[Line] = []
    rules = []
    left = g.sign_x
    for row, (label, share) in enumerate(pairs):
        lw = width(fs, label, size)
        if g.sign_rows == 1:
            lines.append(Line(left - g.sign_x, size * ASCENT, (Span(label, size, 0.3),)))
            rules.append((left + lw + 1 * mm, g.sign_y, left + g.sign_w * share - 2 * mm, g.sign_y))
            left += g.sign_w * share
        else:
            base = g.sign_y - row * g.sign_pitch
            lines.append(Line(0.0, g.sign_y - base + size * ASCENT, (Span(label, size, 0.3),)))
            rules.append((g.sign_x + lw + 1 * mm, base, g.sign_x + g.sign_w, base))
    draw_lines(canvas, fs, g.sign_x, g.sign_y + size * ASCENT, lines)
    canvas.setStrokeGray(0.35)
    canvas.setLineWidth(0.6)
    for x1, y1, x2, y2 in rules:
        if x2 > x1:
            canvas.line(x1, y1, x2, y2)


def check_fields(slip_fields: Iterable[str]) -> FrozenSet[str]:
    """``slip_fields`` as a set, or :class:`ConfigError` for a field slips cannot show."""
    fields = frozenset(f.strip().lower() for f in slip_fields if f.strip())
    unknown = sorted(fields - set(OPTIONAL_FIELDS))
    if unknown:
        raise ConfigError(_("slips cannot show %(join)s", join=', '.join(unknown)), code="bad_slip_field",
                          hint="slip_fields may list: " + ", ".join(OPTIONAL_FIELDS))
    return fields


def write_slips(households: Iterable[Household], path, *, info: BatchInfo, total: int,
                layout: str = DEFAULT_LAYOUT, fonts: FontChoice, package: str = "",
                slip_fields: Sequence[str] = (), new_sheet_per_volunteer: bool = False,
                progress: Optional[Progress] = None, cache: Optional[PageCache] = None) -> int:
    """Write the slips of ``households`` (in the order given) to ``path``; return the pages.

    ``total`` is the batch's household count (for ``No. 12 / 40``);
    ``package`` the batch's package text for households without their own.
    ``new_sheet_per_volunteer`` starts each volunteer's slips on a fresh sheet.
    ``cache`` keeps the pages for the next write and puts in the pages of the
    previous one whose households did not change (:mod:`letterpress.slips.pagecache`).
    Households are consumed one at a time; the file appears only when complete.
    """
    spec: Layout = get_layout(layout)
    fs = register(fonts)
    ctx = SlipContext(fs, info, total, package, check_fields(slip_fields))
    subject = "slips" if info.lang == "en" else "签收单"
    names = (fs.text, fs.latin, fs.code)
    doc = pagecache.document_key(spec, info, total, package, ctx.fields, names, fs.code_mono) \
        if cache is not None else b""
    pages = done = 0
    with pagecache.session(cache, doc, ctx.fields) as kept, atomic_path(path) as tmp, \
            binary_streams():
        canvas = new_canvas(tmp, spec.page_size, fs, info, subject)
        if kept is not None:
            kept.prepare(canvas, names)
        static = define_static(canvas, ctx, spec.slip_width, spec.slip_height, spec.padding)
        for slots in _pages(households, spec, new_sheet_per_volunteer):
            _page(canvas, spec, ctx, static, slots, kept)
            pages += 1
            before, done = done, done + len(slots)
            if progress and done // 50 > before // 50:
                progress("slips", done, total)
        if kept is not None:
            kept.note_fonts(canvas)
        canvas.save()
    if progress:
        progress("slips", done, total)
    return pages


def _pages(households: Iterable[Household], spec: Layout,
           new_sheet_per_volunteer: bool) -> Iterator[List[Tuple[int, Household]]]:
    """The households of each page with their slots (one empty page when there are none)."""
    page: List[Tuple[int, Household]] = []
    volunteer, seen = None, False
    for household in households:
        if not household.url or not household.code:
            raise InputError(_("household %(seq)s (%(name)s) has no code yet",
                               seq=household.seq, name=household.name),
                             code="no_code", where=Where(row=household.recipient.row),
                             hint=_("slips are made by build, which registers the codes"))
        if new_sheet_per_volunteer and page and household.volunteer != volunteer:
            yield page
            page = []
        page.append((len(page), household))
        volunteer, seen = household.volunteer, True
        if len(page) == spec.per_page:
            yield page
            page = []
    if page or not seen:
        yield page


def _page(canvas: Canvas, spec: Layout, ctx: SlipContext, static: str,
          slots: List[Tuple[int, Household]], kept: Optional[pagecache.Session]) -> None:
    """One page of slips: put back from the cache, or drawn (and kept)."""
    key = kept.key(slots) if kept is not None else b""
    allowed = frozenset((static,))
    if kept is not None and kept.put_back(canvas, key, allowed):
        return
    if slots:
        draw_cut_marks(canvas, spec)
    for slot, household in slots:
        draw_slip(canvas, spec.box(slot), household, ctx, spec.padding, static)
    if kept is not None:
        kept.show(canvas, key, allowed)
    else:
        canvas.showPage()


__all__ = ["LAYOUTS", "Layout", "SlipContext", "draw_slip", "write_slips", "write_runsheet",
           "labels", "number_parts", "check_fields", "OPTIONAL_FIELDS", "binary_streams",
           "new_canvas", "PageCache"]
