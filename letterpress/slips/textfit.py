"""Fitting text into boxes: measure, wrap (per character for CJK), shrink, ellipsize, draw.

Text that is too long first shrinks (down to a minimum size), then wraps onto
its allowed lines, and as a last resort is cut with an ellipsis; it never runs
out of its box. Measuring goes through :class:`letterpress.slips.fonts.FontSet`, so
mixed Chinese and Latin text is measured with the font that draws each part.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

from reportlab.pdfbase.pdfmetrics import stringWidth

from letterpress.slips.fonts import FontSet

ELLIPSIS = "\u2026"
#: Baseline below the top of a line, and line pitch, in font sizes.
ASCENT = 0.9
LEADING = 1.28

_CJK = "\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff"
_OPEN = "\uff08(\\[\u300c\u300e\u300a\u3010\u3008\u201c\u2018"
_CLOSE = ("\uff0c\u3002\u3001\uff1b\uff1a\uff01\uff1f\uff09)\\]\u300d\u300f\u300b\u3011\u3009"
          "\u201d\u2019\u2026\u00b7,.;:!?%")
# A breakable unit: one CJK character or one Latin word, with opening
# punctuation glued to its front and closing punctuation to its back, and the
# spaces after it.
_TOKEN = re.compile(
    rf"[{_OPEN}]*(?:[{_CJK}]|[^\s{_CJK}{_OPEN}{_CLOSE}]+)?[{_CLOSE}]*[ \t]*|\S"
)
_SPACES = re.compile(r"[ \t\u3000\u00a0]+")


_WIDTHS: Dict[Tuple[str, str], float] = {}


def width(fs: FontSet, text: str, size: float) -> float:
    """Width of ``text`` in points, each part measured in the font that draws it.

    Widths at size 1 are remembered per font set and text (most texts measured
    are single characters and words, measured again and again).
    """
    key = (fs.text, text)
    unit = _WIDTHS.get(key)
    if unit is None:
        if len(_WIDTHS) > 50_000:
            _WIDTHS.clear()
        unit = sum(stringWidth(part, font, 1.0) for font, part in fs.runs(text))
        _WIDTHS[key] = unit
    return unit * size


def clean(text: str) -> str:
    """Text on one line: runs of spaces and line breaks become one space."""
    return _SPACES.sub(" ", " ".join(str(text or "").split())).strip()


def tokens(text: str) -> List[str]:
    return [t for t in _TOKEN.findall(text) if t]


def ellipsize(fs: FontSet, text: str, size: float, limit: float) -> str:
    """``text`` cut at the end with an ellipsis so that it fits in ``limit`` points."""
    if width(fs, text, size) <= limit:
        return text
    lo, hi = 0, len(text)
    while lo < hi:                      # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if width(fs, text[:mid].rstrip() + ELLIPSIS, size) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return (text[:lo].rstrip() + ELLIPSIS) if lo else ""


def wrap(fs: FontSet, text: str, size: float, first: float, rest: float,
         max_lines: Optional[int] = None) -> Tuple[List[str], bool]:
    """Greedy line breaking of one-line ``text``: ``first`` is the first line's width.

    Returns the lines and whether everything fitted in ``max_lines``; when it
    did not, the last line ends in an ellipsis.
    """
    lines: List[str] = []
    current, current_w = "", 0.0
    for token in tokens(text):
        limit = first if not lines else rest
        tw = width(fs, token, size)
        if current and current_w + width(fs, token.rstrip(), size) > limit:
            lines.append(current.rstrip())
            current, current_w = "", 0.0
            limit = rest
        if not current and width(fs, token.rstrip(), size) > limit:
            # A word longer than the line: break it by characters.
            for ch in token:
                cw = width(fs, ch, size)
                if current and current_w + cw > (first if not lines else rest):
                    lines.append(current.rstrip())
                    current, current_w = "", 0.0
                current += ch
                current_w += cw
            continue
        current += token
        current_w += tw
    if current.strip():
        lines.append(current.rstrip())
    if max_lines is not None and len(lines) > max_lines:
        kept = lines[:max_lines]
        limit = first if max_lines == 1 else rest
        last = kept[-1] + ELLIPSIS
        kept[-1] = last if width(fs, last, size) <= limit else ellipsize(fs, last, size, limit)
        return kept, False
    return lines, True


@dataclass(frozen=True)
class Span:
    """A piece of a line in one size and grey (0 = black)."""

    text: str
    size: float
    gray: float = 0.0
    bold: bool = False


@dataclass(frozen=True)
class Line:
    """A line placed ``x`` points right of the box and ``y`` points below its top (baseline)."""

    x: float
    y: float
    spans: Tuple[Span, ...]


@dataclass(frozen=True)
class Item:
    """A paragraph of a block: an optional grey label and its value.

    The value is drawn at ``size``, shrinking to ``min_size`` before it may be
    cut to ``max_lines``; later lines hang under the value, not the label.
    ``suffix`` (single-line items) follows the value in a smaller grey size.
    """

    value: str
    size: float
    min_size: float
    max_lines: int = 1
    label: str = ""
    bold: bool = False
    suffix: str = ""
    gap: float = 0.35          # space before, in sizes (not before the first item)
    scales: bool = True        # False: keeps its size while the others shrink


def _layout_item(fs: FontSet, item: Item, size: float, box_w: float,
                 max_lines: Optional[int]) -> Tuple[List[Line], float, bool]:
    """Lines of one item at ``size``, relative to the item's top; its height; complete?"""
    if max_lines == 1 and not item.label:
        # A one-line item (the name) shrinks to its width before it is cut.
        need = width(fs, item.value, size)
        if item.suffix:
            need += width(fs, " " + item.suffix, size * 0.62)
        if need > box_w:
            size = max(item.min_size, size * box_w / need)
    label_size = size * 0.82
    label_w = width(fs, item.label, label_size) if item.label else 0.0
    indent = label_w if label_w < box_w * 0.4 else 0.0
    suffix_spans: Tuple[Span, ...] = ()
    first_w = box_w - label_w
    if item.suffix:
        suffix_size = size * 0.62
        suffix = " " + item.suffix
        suffix_w = width(fs, suffix, suffix_size)
        if suffix_w > box_w * 0.45:
            suffix = ellipsize(fs, suffix, suffix_size, box_w * 0.45)
            suffix_w = width(fs, suffix, suffix_size)
        suffix_spans = (Span(suffix, suffix_size, 0.3),)
        first_w -= suffix_w
    texts, complete = wrap(fs, item.value, size, first_w, box_w - indent, max_lines)
    lines: List[Line] = []
    for i, text in enumerate(texts):
        y = i * size * LEADING + size * ASCENT
        spans = [Span(text, size, 0.0, item.bold)]
        if i == 0 and item.label:
            spans.insert(0, Span(item.label, label_size, 0.4))
        if i == 0 and suffix_spans:
            spans.extend(suffix_spans)
        lines.append(Line(0.0 if i == 0 else indent, y, tuple(spans)))
    height = len(texts) * size * LEADING
    return lines, height, complete


_SCALES = (1.0, 0.92, 0.85, 0.78, 0.72, 0.66, 0.6, 0.55, 0.5)


def fit_block(fs: FontSet, items: Sequence[Item], box_w: float, box_h: float) -> List[Line]:
    """Lay out ``items`` top to bottom inside ``box_w`` x ``box_h``.

    Tries smaller sizes until the whole block fits the height (items wrap onto
    as many lines as they need; one-line items stay on one line). At the
    smallest size it cuts lines with an ellipsis, first from items beyond their
    ``max_lines``, then from the last items; lines that still do not fit are
    left out. Every returned line lies inside the box.
    """
    items = [replace(it, value=clean(it.value), suffix=clean(it.suffix)) for it in items
             if it.value and it.value.strip()]
    free = [None if it.max_lines > 1 else 1 for it in items]
    for scale in _SCALES:
        placed, ok = _place(fs, items, scale, free, box_w, box_h)
        if ok:
            return placed
    scale = _SCALES[-1]
    caps = [_natural_lines(fs, it, scale, box_w) for it in items]
    while True:
        placed, ok = _place(fs, items, scale, caps, box_w, box_h)
        if ok or not _cut_one(caps, items):
            break
    return [ln for ln in placed if ln.y + ln.spans[0].size * (LEADING - ASCENT) <= box_h]


def _natural_lines(fs: FontSet, item: Item, scale: float, box_w: float) -> int:
    if item.max_lines == 1:
        return 1
    size = max(item.min_size, item.size * scale) if item.scales else item.size
    lines, _h, _ok = _layout_item(fs, item, size, box_w, None)
    return max(1, len(lines))


def _cut_one(caps: List[int], items: Sequence[Item]) -> bool:
    """One line fewer: to the item furthest beyond its max_lines, else the last with several."""
    excess = [(caps[i] - it.max_lines, i) for i, it in enumerate(items) if caps[i] > it.max_lines]
    if excess:
        caps[max(excess)[1]] -= 1
        return True
    for i in range(len(caps) - 1, -1, -1):
        if caps[i] > 1:
            caps[i] -= 1
            return True
    return False


def _place(fs: FontSet, items: Sequence[Item], scale: float, caps: Sequence[Optional[int]],
           box_w: float, box_h: float) -> Tuple[List[Line], bool]:
    """Lines of all items at ``scale`` (``caps``: lines allowed, None = any); fits ``box_h``?"""
    out: List[Line] = []
    top = 0.0
    for i, (item, cap) in enumerate(zip(items, caps)):
        size = max(item.min_size, item.size * scale) if item.scales else item.size
        if i:
            top += item.gap * size
        lines, height, _complete = _layout_item(fs, item, size, box_w, cap)
        out.extend(Line(ln.x, ln.y + top, ln.spans) for ln in lines)
        top += height
        if top > box_h + 0.01:
            return out, False
    return out, True


def draw_lines(canvas, fs: FontSet, x: float, top: float, lines: Sequence[Line]) -> None:
    """Draw placed lines, ``top`` being the block's top edge, in one text object."""
    if not lines:
        return
    text = canvas.beginText()
    bold = [s.size for ln in lines for s in ln.spans if s.bold]
    if bold:
        canvas.setStrokeGray(0)
        canvas.setLineWidth(max(bold) * 0.035)
    gray, mode, current = None, 0, None
    for line in lines:
        text.setTextOrigin(x + line.x, top - line.y)
        for span in line.spans:
            if span.gray != gray:
                text.setFillGray(span.gray)
                gray = span.gray
            want = 2 if span.bold else 0
            if want != mode:
                text.setTextRenderMode(want)
                mode = want
            for font, part in fs.runs(span.text):
                if (font, span.size) != current:
                    text.setFont(font, span.size)
                    current = (font, span.size)
                text.textOut(part)
    canvas.drawText(text)
