"""Keeping the pages of ``slips.pdf`` whose households did not change when a batch is
built again.

A page's content stream depends on what is drawn on it and on two things the
document decides: the code each character has in its TrueType font subset
(reportlab gives codes in order of first use in a document) and the names of the
fonts (``F1``, ``F2``... in order of first use). With a :class:`PageCache` both
are fixed before anything is drawn: every embedded TrueType font gets the
characters the previous build used, in the order of their codes (new characters
then come after them), and each font is named in one order. A page drawn with
the same households in the same slots then has the same bytes, and the stream
kept from the previous build is put in as the page instead of drawing it again.

The cache is one file, ``.letterpress/slips.cache`` in the output folder
(``outputs.SLIP_CACHE``: ``purge`` deletes it): a header, the compressed page
streams one after another, then an index (a fingerprint per page, where its
stream lies, a checksum) and the character orders, checked with a digest. A
file that is missing, from another version, for other settings or fonts, or
damaged means drawing every page (a page whose stream fails its checksum is
drawn). It holds what ``slips.pdf`` holds and no more.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import struct
import zlib
from pathlib import Path
from typing import IO, Dict, FrozenSet, Iterator, List, Optional, Sequence, Tuple

from reportlab import Version as REPORTLAB_VERSION
from reportlab import rl_config
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfdoc import NoEncryption

from letterpress.files import atomic_path, private_dir
from letterpress.models import BatchInfo, Household

#: The cache of an output folder, relative to it (outputs.SLIP_CACHE: purge removes it).
FILE = Path(".letterpress") / "slips.cache"
_MAGIC = b"letterpress slip pages 1\n"
_TAIL = struct.Struct("<QQ32s")          # index offset, index length, sha256 of the index
_ENTRY = struct.Struct("<16sQIIH")       # page key, offset, length, crc32, forms
_HEAD = struct.Struct("<I")              # length of the JSON header of the index
#: The modules whose code draws a slip page (a change to any of them redraws every page).
_SOURCES = ("slips.py", "layouts.py", "textfit.py", "qr.py", "qrencode.py", "fonts.py",
            "pagecache.py", "pdfcanvas.py")

Slots = Sequence[Tuple[int, Household]]


class PageCache:
    """Where a build keeps its slip pages (``folder``: the output's ``.letterpress``).

    ``reuse=False`` takes only the character orders from the previous build and
    draws every page (the pages it would reuse, drawn afresh). After a write,
    ``drawn`` and ``reused`` count its pages.
    """

    def __init__(self, folder: Path, reuse: bool = True) -> None:
        self.folder = Path(folder)
        self.reuse = reuse
        self.drawn = 0
        self.reused = 0

    @property
    def path(self) -> Path:
        return self.folder / FILE.name


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(REPORTLAB_VERSION.encode())
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def _font_files(names: Sequence[str]) -> List[Tuple]:
    out: List[Tuple] = []
    for name in names:
        font = pdfmetrics.getFont(name)
        face = getattr(font, "face", None)
        filename = getattr(face, "filename", None)
        stat: Tuple = ()
        if isinstance(filename, str) and os.path.isfile(filename):
            st = os.stat(filename)
            stat = (os.path.abspath(filename), st.st_size, st.st_mtime_ns,
                    getattr(face, "subfontNameX", b"").hex())
        out.append((name, type(font).__name__, stat))
    return out


def document_key(layout: object, info: BatchInfo, total: int, package: str,
                 fields: FrozenSet[str], fonts: Sequence[str], code_mono: bool) -> bytes:
    """What every page of a document depends on: the code that draws it, the layout, the
    batch's words, the fonts (files, sizes, times). ``layout``: the Layout (a dataclass)."""
    data = repr((_MAGIC, _code_digest(), layout, info.title, info.org, info.lang, total,
                 package, sorted(fields), _font_files(fonts), code_mono,
                 rl_config.ttfAsciiReadable))
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).digest()


def page_key(doc: bytes, slots: Slots, fields: FrozenSet[str]) -> bytes:
    """A page's fingerprint: the document's, and what each slot shows of its household."""
    parts = []
    for slot, h in slots:
        r = h.recipient
        extra = tuple(getattr(r, f) for f in sorted(fields))
        parts.append((slot, h.seq, h.code, h.url, r.id, r.name, r.honorific, r.address,
                      r.package, r.notes, r.volunteer, extra))
    data = repr(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16, key=doc[:32]).digest()


class _Previous:
    """The previous build's cache file: its character orders, and its pages read on demand."""

    def __init__(self, fh: IO[bytes], seeds: Dict[str, List[int]], forms: List[Tuple[str, ...]],
                 pages: Dict[bytes, Tuple[int, int, int, int]]) -> None:
        self.fh, self.seeds, self.forms, self.pages = fh, seeds, forms, pages

    def get(self, key: bytes) -> Optional[Tuple[bytes, Tuple[str, ...]]]:
        entry = self.pages.get(key)
        if entry is None:
            return None
        offset, length, crc, forms = entry
        try:
            self.fh.seek(offset)
            data = self.fh.read(length)
        except OSError:
            return None
        if len(data) != length or zlib.crc32(data) != crc:
            return None
        return data, self.forms[forms]


def _read(path: Path, doc: bytes, pages: bool) -> Optional[_Previous]:
    """The cache at ``path`` when it is whole and made for ``doc``; else None."""
    try:
        fh = open(path, "rb")
    except OSError:
        return None
    try:
        previous = _parse(fh, doc, pages)
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
        previous = None
    if previous is None:
        fh.close()
    return previous


def _parse(fh: IO[bytes], doc: bytes, pages: bool) -> Optional[_Previous]:
    size = fh.seek(0, os.SEEK_END)
    if size < len(_MAGIC) + _TAIL.size:
        return None
    fh.seek(0)
    if fh.read(len(_MAGIC)) != _MAGIC:
        return None
    fh.seek(size - _TAIL.size)
    start, length, digest = _TAIL.unpack(fh.read(_TAIL.size))
    if start < len(_MAGIC) or start + length != size - _TAIL.size:
        return None
    fh.seek(start)
    raw = fh.read(length)
    if hashlib.sha256(raw).digest() != digest:
        return None
    (head_len,) = _HEAD.unpack_from(raw)
    head = json.loads(raw[_HEAD.size:_HEAD.size + head_len].decode("utf-8"))
    if head["doc"] != doc.hex():
        return None
    seeds = {str(name): [int(cp) for cp in cps] for name, cps in head["seeds"].items()}
    forms = [tuple(str(f) for f in group) for group in head["forms"]]
    index: Dict[bytes, Tuple[int, int, int, int]] = {}
    body = memoryview(raw)[_HEAD.size + head_len:]
    if pages and len(body) % _ENTRY.size == 0:
        for key, offset, n, crc, group in _ENTRY.iter_unpack(body):
            if offset >= len(_MAGIC) and offset + n <= start and group < len(forms):
                index[key] = (offset, n, crc, group)
    return _Previous(fh, seeds, forms, index)


class Session:
    """One write of ``slips.pdf`` with a cache: the previous pages, and the new file."""

    def __init__(self, cache: PageCache, doc: bytes, fields: FrozenSet[str],
                 previous: Optional[_Previous], out: IO[bytes]) -> None:
        self.cache, self.doc, self.fields = cache, doc, fields
        self.previous = previous
        self.out = out
        self.entries: List[bytes] = []
        self.forms: Dict[Tuple[str, ...], int] = {}
        self.seeds: Dict[str, List[int]] = {}
        self.fonts: List[str] = []
        self.out.write(_MAGIC)

    def prepare(self, canvas, fonts: Sequence[str]) -> None:
        """Give each font of ``fonts`` (in this order) its characters and its name now."""
        doc = canvas._doc
        self.fonts = list(dict.fromkeys(fonts))
        seeds = self.previous.seeds if self.previous else {}
        for name in self.fonts:
            font = pdfmetrics.getFont(name)
            if getattr(font, "_dynamicFont", 0) and hasattr(font, "splitString"):
                font.splitString("".join(map(chr, seeds.get(name, ()))), doc)
                font.getSubsetInternalName(0, doc)
            else:
                doc.getInternalFontName(name)

    def key(self, slots: Slots) -> bytes:
        return page_key(self.doc, slots, self.fields)

    def put_back(self, canvas, key: bytes, allowed: FrozenSet[str]) -> bool:
        """Put in the previous build's page ``key`` as the next page, if it has it."""
        if self.previous is None or not self.cache.reuse or not _plain(canvas):
            return False
        found = self.previous.get(key)
        if found is None or not set(found[1]) <= allowed:
            return False
        canvas.put_page(found[0], found[1])
        self._keep(key, found[0], found[1])
        self.cache.reused += 1
        return True

    def show(self, canvas, key: bytes, allowed: FrozenSet[str]) -> None:
        """End the page drawn on ``canvas`` and keep its stream."""
        forms = tuple(canvas._formsinuse)
        plain = _plain(canvas) and set(forms) <= allowed
        canvas.showPage()
        self.cache.drawn += 1
        data = canvas.last_stream()
        if plain and data is not None:
            self._keep(key, data, forms)

    def _keep(self, key: bytes, data: bytes, forms: Tuple[str, ...]) -> None:
        group = self.forms.setdefault(forms, len(self.forms))
        offset = self.out.tell()
        self.out.write(data)
        self.entries.append(_ENTRY.pack(key, offset, len(data), zlib.crc32(data), group))

    def note_fonts(self, canvas) -> None:
        """Each TrueType font's characters in the order of their codes (before ``save()``)."""
        for name in self.fonts:
            state = getattr(pdfmetrics.getFont(name), "state", {}).get(canvas._doc)
            if state is not None:
                codes = state.assignments
                self.seeds[name] = sorted(codes, key=codes.__getitem__)

    def finish(self) -> None:
        head = json.dumps({"doc": self.doc.hex(), "seeds": self.seeds,
                           "forms": [list(f) for f in self.forms]}).encode("utf-8")
        raw = _HEAD.pack(len(head)) + head + b"".join(self.entries)
        start = self.out.tell()
        self.out.write(raw)
        self.out.write(_TAIL.pack(start, len(raw), hashlib.sha256(raw).digest()))


def _plain(canvas) -> bool:
    """Whether the page has nothing but its stream and forms (what the cache can hold)."""
    return (rl_config.useA85 == 0 and canvas._doc.encrypt.__class__ is NoEncryption
            and canvas._pageCompression and not canvas._annotationrefs
            and not canvas._colorsUsed and not canvas._shadingUsed
            and not canvas._psCommandsBeforePage and not canvas._psCommandsAfterPage
            and canvas._extgstate.getState() is None)


@contextlib.contextmanager
def session(cache: Optional[PageCache], doc: bytes,
            fields: FrozenSet[str]) -> Iterator[Optional[Session]]:
    """A :class:`Session` for ``cache`` (None: no cache, and None). The new cache file
    replaces the old one when the block ends without an error."""
    if cache is None:
        yield None
        return
    cache.drawn = cache.reused = 0
    previous = _read(cache.path, doc, cache.reuse)
    try:
        private_dir(cache.folder)      # it holds what slips.pdf holds: owner-only
        with atomic_path(cache.path) as tmp:
            with open(tmp, "wb") as out:
                current = Session(cache, doc, fields, previous, out)
                yield current
                current.finish()
            if previous is not None:
                previous.fh.close()     # before the new file takes its place
    finally:
        if previous is not None:
            previous.fh.close()
