"""QR matrices from ``qrcode``, drawn as vector rectangles, as PNG and in a terminal.

Speed: ``qrcode``'s defaults search for the smallest version (``fit``) and then
try all eight mask patterns, building the symbol nine times. A household URL
always has the same length and character set within a batch, so the version
is worked out once per payload length and mode (cached) and the mask pattern
is fixed: one build per code, and that build is :mod:`letterpress.slips.qrencode`
(the same modules as ``qrcode``'s, about 0.1 ms instead of 1 ms).

Upper-case payloads (household URLs) are encoded in alphanumeric mode; any
other payload (a volunteer badge URL with its mixed-case token) in byte mode.

Error correction: the highest level (H, then Q, then M) whose symbol is no
larger than version 3, or than the version level M needs when that is larger.
A household URL with a 30-character https base URL (44 characters) is version
3 at level Q (about 25 % of the symbol may be lost, against 15 % at M); with a
base URL of 21 characters or fewer (``http://192.168.1.20:8470``) it is
version 3 at level H (about 30 %); a base URL of 31 to 47 characters stays at
level M: the symbol never grows for the sake of error correction.
"""
from __future__ import annotations

import functools
import io
import re
from typing import List, Sequence

import qrcode
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_M, ERROR_CORRECT_Q
from qrcode.exceptions import DataOverflowError
from qrcode.util import MODE_8BIT_BYTE, MODE_ALPHA_NUM, QRData

from letterpress.errors import LetterpressError
from letterpress.i18n import _
from letterpress.slips import qrencode

#: Modules of light margin around every symbol (the QR standard's quiet zone).
QUIET = 4
#: Smallest module we draw: smaller modules stop cheap phone cameras reading the code.
MIN_MODULE_MM = 0.5
#: The fixed mask pattern: of the eight, 3 had the lowest average penalty score
#: over a sample of household URLs (any mask decodes; this one keeps large
#: same-colour blocks rarest).
MASK_PATTERN = 3

_MM = 72.0 / 25.4
_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")

#: Rows of the symbol, top to bottom; each row is bytes, 1 = dark module, 0 = light.
Matrix = List[bytes]
_DARK_RUN = re.compile(rb"\x01+")


class QRError(LetterpressError):
    """A payload that does not fit, or a QR code drawn too small to scan."""

    code = "qr_error"


def mode_for(payload: str) -> int:
    """``MODE_ALPHA_NUM`` when every character allows it, else ``MODE_8BIT_BYTE``."""
    return MODE_ALPHA_NUM if _ALPHANUMERIC.issuperset(payload) else MODE_8BIT_BYTE


@functools.lru_cache(maxsize=64)
def version_for(length: int, mode: int, error_correction: int = ERROR_CORRECT_M) -> int:
    """The smallest QR version holding ``length`` characters in ``mode`` (computed once, cached)."""
    sample = ("A" if mode == MODE_ALPHA_NUM else "a") * length
    code = qrcode.QRCode(error_correction=error_correction)
    code.add_data(QRData(sample, mode=mode))
    try:
        return code.best_fit()
    except (DataOverflowError, ValueError):
        raise QRError(_("%(length)s characters do not fit in a QR code", length=length), code="qr_too_long",
                      hint=_("use a shorter base URL")) from None


#: Largest QR version a stronger error correction level may use (29 x 29 modules).
MAX_STRONG_VERSION = 3
#: Levels tried, strongest first; M is the floor (the design's level).
LEVELS = (ERROR_CORRECT_H, ERROR_CORRECT_Q, ERROR_CORRECT_M)


@functools.lru_cache(maxsize=64)
def level_for(length: int, mode: int) -> tuple:
    """``(error correction level, version)`` for a payload: the strongest level that keeps
    the symbol within version :data:`MAX_STRONG_VERSION` (or within level M's version)."""
    limit = max(MAX_STRONG_VERSION, version_for(length, mode, ERROR_CORRECT_M))
    for level in LEVELS[:-1]:
        try:
            version = version_for(length, mode, level)
        except QRError:
            continue
        if version <= limit:
            return level, version
    return ERROR_CORRECT_M, version_for(length, mode, ERROR_CORRECT_M)


def matrix(payload: str) -> Matrix:
    """The symbol's modules, rows top to bottom, WITHOUT the quiet zone.

    Each row is ``bytes`` (1 = dark, 0 = light), so ``bool(row[c])`` reads a module.
    """
    mode = mode_for(payload)
    data = payload.encode("utf-8") if mode == MODE_8BIT_BYTE else payload
    level, version = level_for(len(data), mode)
    return qrencode.matrix(data, mode, version, level, MASK_PATTERN)


def runs(mat: Sequence[Sequence[int]]) -> List[tuple]:
    """Horizontal runs of dark modules as ``(row, start column, length)``."""
    if not mat:
        return []
    rows = [row if isinstance(row, bytes) else bytes(bool(m) for m in row) for row in mat]
    width = len(rows[0]) + 1
    if any(len(row) != width - 1 for row in rows):
        return [(r, m.start(), m.end() - m.start())
                for r, row in enumerate(rows) for m in _DARK_RUN.finditer(row)]
    # One search over all rows, a light module between them: runs never join across rows.
    out: List[tuple] = []
    for m in _DARK_RUN.finditer(b"\0".join(rows)):
        r, c = divmod(m.start(), width)
        out.append((r, c, m.end() - m.start()))
    return out


def side_modules(mat: Sequence[Sequence[int]]) -> int:
    """Modules along one side, quiet zone included."""
    return len(mat) + 2 * QUIET


def draw(canvas, x: float, y: float, size: float, mat: Sequence[Sequence[int]]) -> float:
    """Draw ``mat`` with its lower-left corner (quiet zone included) at ``(x, y)``.

    ``size`` is the side in points, quiet zone included. Dark modules are
    merged into horizontal runs and filled as ONE path in black. Returns the
    module size in points; raises :class:`QRError` below 0.5 mm a module.
    """
    n = len(mat)
    module = size / (n + 2 * QUIET)
    if module < MIN_MODULE_MM * _MM - 1e-9:
        raise QRError(_("QR modules would be %(size)s mm, below %(least)s mm",
                        size=format(module / _MM, ".2f"), least=MIN_MODULE_MM),
                      code="qr_too_small", hint=_("use a larger slip layout or a shorter base "
                                                  "URL"))
    # One path in module units: small whole numbers keep the content stream short,
    # and writing the operators directly avoids formatting ~200 floats per code.
    top = n - 1
    ops = [f"{c} {top - r} {length} 1 re" for r, c, length in runs(mat)]
    canvas.saveState()
    canvas.setFillGray(0)
    canvas.transform(module, 0, 0, module, x + QUIET * module, y + QUIET * module)
    canvas.addLiteral("\n".join(ops) + "\nf")
    canvas.restoreState()
    return module


def png(payload: str, width_px: int = 400) -> bytes:
    """A 1-bit PNG of the QR code (quiet zone included), whole pixels per module.

    The width is the largest multiple of the module count not above
    ``width_px`` (at least one pixel a module).
    """
    from PIL import Image

    mat = matrix(payload)
    side = side_modules(mat)
    image = Image.new("1", (side, side), 1)
    pixels = image.load()
    assert pixels is not None
    for r, row in enumerate(mat):
        for c, dark in enumerate(row):
            if dark:
                pixels[c + QUIET, r + QUIET] = 0
    scale = max(1, int(width_px) // side)
    image = image.resize((side * scale, side * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def terminal(payload: str, *, invert: bool = False) -> str:
    """The QR code drawn with Unicode half blocks, two module rows per text line.

    By default the light modules are drawn as blocks (for the usual light-on-dark
    terminal); ``invert=True`` draws the dark modules as blocks instead (for a
    dark-on-light terminal).
    """
    mat = matrix(payload)
    side = side_modules(mat)
    grid = [[False] * side for _ in range(side)]
    for r, row in enumerate(mat):
        for c, dark in enumerate(row):
            grid[r + QUIET][c + QUIET] = bool(dark)
    chars = {(True, True): "\u2588", (True, False): "\u2580",
             (False, True): "\u2584", (False, False): " "}
    lines = []
    for r in range(0, side, 2):
        top = grid[r]
        bottom = grid[r + 1] if r + 1 < side else None
        line = []
        for c in range(side):
            # "painted" = drawn in the block character's (foreground) colour.
            painted_top = top[c] if invert else not top[c]
            painted_bottom = False if bottom is None else (bottom[c] if invert else not bottom[c])
            line.append(chars[(painted_top, painted_bottom)])
        lines.append("".join(line))
    return "\n".join(lines)
