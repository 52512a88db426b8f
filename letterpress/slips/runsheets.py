"""Run sheets: one A4 list per volunteer of their households in delivery order.

The volunteer carries it on the round: slip number, name, full address, full
phone (they may have to call), health category, notes and a tick box, with
the table header repeated on every page and ``page 1 of 2`` at the foot. At
the top, the volunteer's badge QR (their login link) with the words "scan
with your phone to log in". Households nobody is assigned to get a sheet
without a badge.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from reportlab.lib.units import mm

from letterpress.files import atomic_path
from letterpress.models import BatchInfo, Household, Volunteer
from letterpress.slips import qr
from letterpress.slips.fonts import FontChoice, FontSet, register
from letterpress.slips.pdfcanvas import binary_streams, new_canvas
from letterpress.slips.textfit import (
    ASCENT,
    LEADING,
    Line,
    Span,
    clean,
    draw_lines,
    ellipsize,
    width,
    wrap,
)

PAGE = (210 * mm, 297 * mm)
MARGIN = 14 * mm
#: Columns: key and width in mm (they add up to the 182 mm between the margins).
COLUMNS: Tuple[Tuple[str, float], ...] = (
    ("seq", 12), ("name", 30), ("address", 52), ("phone", 27), ("category", 20),
    ("notes", 30), ("done", 11),
)
WORDS: Dict[str, Dict[str, str]] = {
    "zh": {"title": "送达清单", "unassigned": "未分配志愿者", "seq": "序号", "name": "姓名",
           "address": "地址", "phone": "电话", "category": "类别", "notes": "备注", "done": "完成",
           "scan": "用手机扫码登录", "count": "共 {n} 户", "of": "（全批共 {total} 户）", "continued": "（续）",
           "page": "第 {page} / {pages} 页",
           "howto": "每到一户，扫描签收单上的二维码登记结果；没送到也要登记原因。"},
    "en": {"title": "Run sheet", "unassigned": "unassigned", "seq": "No.", "name": "Name",
           "address": "Address", "phone": "Phone", "category": "Category", "notes": "Notes",
           "done": "Done", "scan": "scan with your phone to log in", "count": "{n} households",
           "of": " (of {total} in the batch)",
           "continued": " (continued)", "page": "page {page} of {pages}",
           "howto": "At each door, scan the QR code on the slip and record what happened, "
                    "also when the package could not be delivered."},
}
BODY = 9.0
MAX_CELL_LINES = 8
CELL_PAD = 1.6 * mm


def words(lang: str) -> Dict[str, str]:
    return WORDS["en" if lang == "en" else "zh"]


@dataclass(frozen=True)
class Row:
    cells: Tuple[Tuple[str, ...], ...]     # wrapped lines per column
    height: float


def _cells(household: Household) -> Dict[str, str]:
    r = household.recipient
    name = f"{r.name} {r.honorific}".strip() if r.honorific else r.name
    return {"seq": str(household.seq), "name": name or r.id, "address": r.address,
            "phone": r.phone, "category": r.category, "notes": r.notes, "done": ""}


def _row(fs: FontSet, values: Dict[str, str], size: float) -> Row:
    cells = []
    lines_max = 1
    for key, col_mm in COLUMNS:
        inner = col_mm * mm - 2 * CELL_PAD
        text = clean(values.get(key, ""))
        lines, _ok = wrap(fs, text, size, inner, inner, MAX_CELL_LINES) if text else ([], True)
        cells.append(tuple(lines))
        lines_max = max(lines_max, len(lines))
    return Row(tuple(cells), lines_max * size * LEADING + 2 * CELL_PAD)


def _title(volunteer: Volunteer, w: Dict[str, str]) -> str:
    return f"{w['title']} · {volunteer.name or w['unassigned']}"


def write_runsheet(volunteer: Volunteer, households: Sequence[Household], path, *,
                   info: BatchInfo, total: int, fonts: FontChoice, lang: str = "") -> int:
    """Write ``volunteer``'s run sheet to ``path`` (atomically); return its page count.

    ``households`` are theirs, in delivery order; ``total`` is the batch's
    household count. ``lang`` defaults to the batch's language.
    """
    lang = lang or info.lang
    w = words(lang)
    fs = register(fonts)
    header = _row(fs, {k: w[k] for k, _ in COLUMNS}, BODY)
    rows = [_row(fs, _cells(h), BODY) for h in households]

    width_all = PAGE[0] - 2 * MARGIN
    badge = 34 * mm if volunteer.url else 0.0
    first_top = PAGE[1] - MARGIN - max(badge + 6 * mm, 27 * mm)
    other_top = PAGE[1] - MARGIN - 12 * mm
    bottom = MARGIN + 8 * mm
    pages: List[List[Row]] = [[]]
    space = first_top - header.height - bottom
    for row in rows:
        if row.height > space and pages[-1]:
            pages.append([])
            space = other_top - header.height - bottom
        pages[-1].append(row)
        space -= row.height

    with atomic_path(path) as tmp, binary_streams():
        canvas = new_canvas(tmp, PAGE, fs, info, _title(volunteer, w))
        for number, page_rows in enumerate(pages, start=1):
            if number == 1:
                _draw_top(canvas, fs, volunteer, households, info, w, badge, total)
                top = first_top
            else:
                draw_lines(canvas, fs, MARGIN, PAGE[1] - MARGIN, [Line(0.0, 11 * ASCENT, (
                    Span(_title(volunteer, w) + w["continued"], 11, 0.0, True),))])
                top = other_top
            top = _draw_row(canvas, fs, header, top, width_all, head=True)
            for i, row in enumerate(page_rows):
                top = _draw_row(canvas, fs, row, top, width_all, stripe=i % 2 == 1)
            foot = f"{info.title} · {volunteer.name or w['unassigned']}"
            page_text = w["page"].format(page=number, pages=len(pages))
            pw = width(fs, page_text, 8)
            draw_lines(canvas, fs, MARGIN, MARGIN + 8 * ASCENT, [
                Line(0.0, 8 * ASCENT, (Span(ellipsize(fs, foot, 8, width_all - pw - 10 * mm), 8,
                                            0.45),)),
                Line(width_all - pw, 8 * ASCENT, (Span(page_text, 8, 0.45),))])
            canvas.showPage()
        canvas.save()
    return len(pages)


def _draw_top(canvas, fs: FontSet, volunteer: Volunteer, households: Sequence[Household],
              info: BatchInfo, w: Dict[str, str], badge: float, total: int) -> None:
    """Title, batch, count and instructions; the badge QR at the top right."""
    top = PAGE[1] - MARGIN
    text_w = PAGE[0] - 2 * MARGIN - (badge + 6 * mm if badge else 0)
    sub = " · ".join(t for t in (info.title, info.org) if t)
    count = w["count"].format(n=len(households))
    if total and total != len(households):
        count += w["of"].format(total=total)
    lines = [Line(0.0, 18 * ASCENT, (Span(ellipsize(fs, _title(volunteer, w), 18, text_w), 18,
                                          0.0, True),))]
    y = 18 * LEADING + 1.5 * mm
    lines.append(Line(0.0, y + 10 * ASCENT, (Span(ellipsize(fs, sub, 10, text_w), 10, 0.25),)))
    y += 10 * LEADING
    lines.append(Line(0.0, y + 10 * ASCENT, (Span(count, 10, 0.25),)))
    y += 10 * LEADING + 1 * mm
    howto, _ok = wrap(fs, w["howto"], 8.5, text_w, text_w, 2)
    for text in howto:
        lines.append(Line(0.0, y + 8.5 * ASCENT, (Span(text, 8.5, 0.4),)))
        y += 8.5 * LEADING
    draw_lines(canvas, fs, MARGIN, top, lines)
    if badge:
        x = PAGE[0] - MARGIN - badge
        qr.draw(canvas, x, top - badge, badge, qr.matrix(volunteer.url))
        caption = ellipsize(fs, w["scan"], 8, badge + 6 * mm)
        cw = width(fs, caption, 8)
        draw_lines(canvas, fs, x + (badge - cw) / 2, top - badge - 0.5 * mm,
                   [Line(0.0, 8 * ASCENT, (Span(caption, 8, 0.2),))])


def _draw_row(canvas, fs: FontSet, row: Row, top: float, total_w: float, head: bool = False,
              stripe: bool = False) -> float:
    """One table row with its top edge at ``top``; returns the next row's top."""
    bottom = top - row.height
    if head or stripe:
        canvas.setFillGray(0.88 if head else 0.96)
        canvas.rect(MARGIN, bottom, total_w, row.height, stroke=0, fill=1)
    canvas.setStrokeGray(0.6)
    canvas.setLineWidth(0.4)
    canvas.line(MARGIN, bottom, MARGIN + total_w, bottom)
    if head:
        canvas.line(MARGIN, top, MARGIN + total_w, top)
    lines: List[Line] = []
    x = 0.0
    for (key, col_mm), cell in zip(COLUMNS, row.cells):
        for i, text in enumerate(cell):
            bold = head or key in ("seq", "name")
            lines.append(Line(x + CELL_PAD, CELL_PAD + BODY * ASCENT + i * BODY * LEADING,
                              (Span(text, BODY, 0.3 if head else 0.0, bold and not head),)))
        if key == "done" and not head:
            box = 4 * mm
            canvas.setStrokeGray(0.2)
            canvas.setLineWidth(0.7)
            canvas.rect(MARGIN + x + (col_mm * mm - box) / 2, top - CELL_PAD - box, box, box,
                        stroke=1, fill=0)
        x += col_mm * mm
    draw_lines(canvas, fs, MARGIN, top, lines)
    return bottom
