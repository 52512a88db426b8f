"""Finding a CJK TrueType font, registering it with reportlab, and glyph coverage.

Slips and run sheets embed every font that draws on them. Chinese text needs a
CJK *TrueType* font (reportlab embeds TrueType outlines, not the CFF outlines of
``.otf`` fonts such as Noto CJK). :func:`find_font` looks for one: an explicit
path first, then well-known places on Linux, Windows and macOS, then any
TrueType font on the machine whose character map has Chinese. When there is
none, it falls back to reportlab's built-in ``STSong-Light``, which is NOT
embedded (the PDF then depends on the viewer's fonts), and Latin text and
digits are still drawn with an embedded TrueType font.
"""
from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Tuple

from letterpress.errors import LetterpressError
from letterpress.i18n import N_, _

#: Characters a CJK font must have to count as one.
PROBE = "中文户社区"
#: reportlab's built-in Chinese font (Adobe-GB1), used only when nothing else is found.
CID_FALLBACK = "STSong-Light"
_INSTALL_HINT = N_("install a CJK TrueType font (Debian/Ubuntu: apt install fonts-wqy-microhei; "
                 "Fedora: wqy-microhei-fonts) or give --font PATH to a .ttf/.ttc font")

_LINUX = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/TTF/wqy-microhei.ttc",
    "/usr/share/fonts/TTF/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
    "/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf",
    "/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/google-droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/google-droid-sans-fonts/DroidSansFallbackFull.ttf",
)
_WINDOWS = ("msyh.ttc", "simsun.ttc", "simhei.ttf", "simkai.ttf", "Deng.ttf", "simfang.ttf")
_MACOS = (
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    "/System/Library/Fonts/Supplemental/Songti.ttc",
    "/Library/Fonts/Songti.ttc",
)
#: Monospaced TrueType fonts for the code under the QR, best first.
_MONO = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationMono-Bold.ttf",
    "/Library/Fonts/Courier New Bold.ttf",
    "/System/Library/Fonts/Supplemental/Courier New Bold.ttf",
)
_WINDOWS_MONO = ("consolab.ttf", "courbd.ttf")


class FontError(LetterpressError):
    """A font given with --font (or in the config) that cannot be used."""

    code = "font_error"


@dataclass(frozen=True)
class FontChoice:
    """The font that draws slips and run sheets.

    ``path`` is None for the built-in ``STSong-Light`` fallback, whose
    ``embedded`` is False and whose ``warning`` says what that means.
    """

    path: Optional[Path]
    subfont_index: int = 0
    name: str = CID_FALLBACK
    embedded: bool = False
    warning: str = ""


@dataclass(frozen=True)
class FontSet:
    """reportlab font names to draw with, after :func:`register`.

    ``text`` draws the text; characters it lacks (Latin with the CID fallback)
    are drawn with ``latin``, an embedded TrueType font. ``code`` draws the
    household code; ``code_mono`` tells whether it is monospaced.
    """

    text: str
    latin: str
    code: str
    code_mono: bool
    text_chars: Optional[FrozenSet[int]]     # None: the CID fallback (CJK characters only)
    latin_chars: FrozenSet[int]

    def runs(self, text: str) -> List[Tuple[str, str]]:
        """``text`` split into ``(font name, part)`` runs by which font draws each character."""
        chars = self.text_chars
        if chars is not None and all(ord(ch) in chars for ch in text):
            return [(self.text, text)]
        out: List[Tuple[str, str]] = []
        for ch in text:
            font = self.text if self._in_text(ch) else self.latin
            if out and out[-1][0] == font:
                out[-1] = (font, out[-1][1] + ch)
            else:
                out.append((font, ch))
        return out

    def _in_text(self, ch: str) -> bool:
        cp = ord(ch)
        if self.text_chars is None:
            return _is_cjk(cp) or cp not in self.latin_chars
        return cp in self.text_chars or cp not in self.latin_chars


def _is_cjk(cp: int) -> bool:
    """Characters the CID fallback draws: CJK ideographs, punctuation, full-width forms."""
    return (0x2E80 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF or 0xFE30 <= cp <= 0xFE4F
            or 0xFF00 <= cp <= 0xFFEF or 0x20000 <= cp <= 0x3FFFF)


@functools.lru_cache(maxsize=32)
def _load(path: str, index: int):
    """A reportlab TTFont for ``path`` (parsed once per process)."""
    from reportlab.pdfbase.ttfonts import TTFont

    stem = "".join(ch for ch in Path(path).stem if ch.isalnum())[:24]
    return TTFont(f"LP-{stem}-{index}", path, subfontIndex=index)


def _reportlab_font(name: str) -> str:
    import reportlab

    return os.path.join(os.path.dirname(reportlab.__file__), "fonts", name)


def _family(font) -> str:
    raw = getattr(font.face, "familyName", b"") or getattr(font.face, "name", b"")
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _covers(font, text: str) -> bool:
    cmap = font.face.charToGlyph
    return all(ord(ch) in cmap for ch in text)


def _try(path: str, index: int = 0):
    """The loaded font, or None when reportlab cannot read it or it has no Chinese."""
    try:
        font = _load(path, index)
    except Exception:
        return None
    return font if _covers(font, PROBE) else None


def _choice(path: str, index: int, font, warning: str = "") -> FontChoice:
    return FontChoice(Path(path), index, _family(font), True, warning)


def find_font(explicit: Optional[Path] = None) -> FontChoice:
    """The CJK TrueType font to use, or the built-in fallback with a warning.

    ``explicit`` (from --font or the config) must exist and be a TrueType font
    reportlab can embed, else :class:`FontError` with a hint. A ``.ttc`` path
    may end in ``#N`` to pick its N-th font (default 0).
    """
    if explicit is not None:
        return _explicit(Path(explicit))
    return _search()


@functools.lru_cache(maxsize=1)
def _search() -> FontChoice:
    """The first usable CJK TrueType font on this machine (searched once per process)."""
    for path in _candidates():
        font = _try(path)
        if font is not None:
            return _choice(path, 0, font)
    for path in _fc_list() + _globbed():
        font = _try(path)
        if font is not None:
            return _choice(path, 0, font)
    return fallback_font()


def fallback_font() -> FontChoice:
    """reportlab's built-in ``STSong-Light`` (not embedded), with the warning to show."""
    return FontChoice(None, 0, CID_FALLBACK, False,
                      _("no CJK TrueType font found: Chinese text uses the built-in "
                        "STSong-Light, which is not embedded, so the PDF shows Chinese only where "
                        "the viewer or printer has a Chinese font; %(hint)s",
                        hint=_(_INSTALL_HINT)))


def _explicit(given: Path) -> FontChoice:
    index = 0
    text = str(given)
    if "#" in text and text.rsplit("#", 1)[1].isdigit():
        text, number = text.rsplit("#", 1)
        index = int(number)
    path = Path(text).expanduser()
    if not path.is_file():
        raise FontError(_("font file %(path)s does not exist", path=path), code="font_missing",
                        hint=_("check the path given to --font, or leave --font out to find a "
                               "font on this computer"))
    with open(path, "rb") as fh:
        magic = fh.read(4)
    cff = magic == b"OTTO"
    try:
        font = _load(str(path), index)
    except Exception as exc:
        cff = cff or "postscript" in str(exc).lower() or "cff" in str(exc).lower()
        if cff:
            raise FontError(_("%(name)s has PostScript (CFF) outlines, which cannot be "
                              "embedded in the PDF", name=path.name), code="font_cff",
                            hint=_("use a TrueType font instead (.ttf/.ttc), e.g. Debian's "
                                   "fonts-wqy-microhei; Noto/Source Han .otf fonts do not work")
                            ) from None
        raise FontError(_("%(name)s cannot be used as a font: %(exc)s", name=path.name,
                          exc=exc), code="font_unusable",
                        hint=_("give a TrueType font (.ttf or .ttc), e.g. %(example)s",
                               example="/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
                        ) from None
    warning = ""
    if not _covers(font, PROBE):
        warning = _("the font %(name)s has no Chinese characters; Chinese text will print "
                    "as empty boxes", name=path.name)
    return _choice(str(path), index, font, warning)


def _candidates() -> List[str]:
    paths: List[str] = []
    if sys.platform.startswith("win"):
        fonts_dir = Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts"
        paths += [str(fonts_dir / name) for name in _WINDOWS]
    elif sys.platform == "darwin":
        paths += list(_MACOS)
        paths += [str(Path.home() / "Library/Fonts" / Path(p).name) for p in _MACOS]
    paths += list(_LINUX)
    return [p for p in paths if os.path.isfile(p)]


def _fc_list() -> List[str]:
    """TrueType files fontconfig says support Chinese (Linux, BSD)."""
    exe = shutil.which("fc-list")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, ":lang=zh", "file"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    files = sorted({line.split(":")[0].strip() for line in out.splitlines()})
    return [f for f in files if f.lower().endswith((".ttf", ".ttc"))]


def _globbed() -> List[str]:
    """Large TrueType files in the usual font folders (CJK fonts are megabytes)."""
    roots = ["/usr/share/fonts", "/usr/local/share/fonts",
             str(Path.home() / ".local/share/fonts"), str(Path.home() / ".fonts")]
    found = []
    for root in roots:
        for pattern in ("**/*.ttf", "**/*.ttc", "**/*.TTF", "**/*.TTC"):
            for path in glob.glob(os.path.join(root, pattern), recursive=True):
                try:
                    if os.path.getsize(path) > 1_000_000:
                        found.append(path)
                except OSError:
                    pass
    return sorted(set(found))


def _mono_path() -> Tuple[str, bool]:
    """A monospaced bold TrueType font for codes, else reportlab's bundled Vera Bold."""
    paths = list(_MONO)
    if sys.platform.startswith("win"):
        fonts_dir = Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts"
        paths = [str(fonts_dir / n) for n in _WINDOWS_MONO] + paths
    for path in paths:
        if os.path.isfile(path):
            try:
                _load(path, 0)
                return path, True
            except Exception:
                continue
    return _reportlab_font("VeraBd.ttf"), False


_REGISTERED: Dict[Tuple, FontSet] = {}


def register(choice: FontChoice) -> FontSet:
    """Register the fonts of ``choice`` with reportlab and name them (once per process)."""
    from reportlab.pdfbase import pdfmetrics

    key = (choice.path, choice.subfont_index)
    if key in _REGISTERED:
        return _REGISTERED[key]
    latin = _load(_reportlab_font("Vera.ttf"), 0)
    pdfmetrics.registerFont(latin)
    code_path, mono = _mono_path()
    code = _load(code_path, 0)
    pdfmetrics.registerFont(code)
    latin_chars = frozenset(latin.face.charToGlyph)
    if choice.path is None:
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont

        pdfmetrics.registerFont(UnicodeCIDFont(CID_FALLBACK))
        fs = FontSet(CID_FALLBACK, latin.fontName, code.fontName, mono, None, latin_chars)
    else:
        font = _load(str(choice.path), choice.subfont_index)
        pdfmetrics.registerFont(font)
        fs = FontSet(font.fontName, latin.fontName, code.fontName, mono,
                     frozenset(font.face.charToGlyph), latin_chars)
    _REGISTERED[key] = fs
    return fs


def missing_glyphs(text: str, choice: FontChoice) -> set:
    """Characters of ``text`` that no font of ``choice`` can draw (whitespace ignored)."""
    latin = _load(_reportlab_font("Vera.ttf"), 0).face.charToGlyph
    cmap = None if choice.path is None else _load(str(choice.path), choice.subfont_index
                                                  ).face.charToGlyph
    missing = set()
    for ch in set(text):
        cp = ord(ch)
        if ch.isspace() or cp < 0x20 or cp in latin:
            continue
        if cmap is not None:
            if cp not in cmap:
                missing.add(ch)
        elif not _in_gb(ch):
            missing.add(ch)
    return missing


def _in_gb(ch: str) -> bool:
    """Whether the CID fallback (Adobe-GB1) has ``ch``: GB 18030 two-byte characters."""
    try:
        return len(ch.encode("gb18030")) == 2
    except UnicodeEncodeError:
        return False


def describe(choice: FontChoice) -> str:
    """One line for messages: which font, from where, embedded or not."""
    if choice.path is None:
        return f"{choice.name} (built in, not embedded)"
    return f"{choice.name} ({choice.path}, embedded)"

