"""Putting PDFs together for the printer: ``letters.pdf`` and one print pack per volunteer.

``merge_letters`` joins the converted letters in delivery order with one flat
bookmark per household ("0001 王秀英"); with ``duplex`` each letter is padded
to an even page count, so no letter starts on the back of another.

``print_pack`` puts page ranges of several PDFs into one file, one bookmark per
section: a volunteer's letters (taken from ``letters.pdf`` by the ranges
``merge_letters`` returned), then their slips, then their run sheet. Sections
start on a fresh sheet with ``duplex``. ``write_print_packs`` makes many packs
and opens each source PDF once for all of them.

Every file is written under a temporary name and renamed when complete. Each
source PDF is let go once its pages are copied, so memory stays bounded by
the output being written, not by the number of letters.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError

from letterpress.errors import LetterpressError, Where
from letterpress.files import atomic_path
from letterpress.i18n import _
from letterpress.models import Progress

#: Bookmark titles of the sections of a print pack.
SECTION_TITLES: Dict[str, Dict[str, str]] = {
    "zh": {"letters": "慰问信", "slips": "取件单", "runsheet": "任务单"},
    "en": {"letters": "Letters", "slips": "Slips", "runsheet": "Run sheet"},
}


def section_title(kind: str, lang: str = "zh") -> str:
    """``section_title("slips", "zh")`` -> ``"取件单"``; kinds: letters, slips, runsheet."""
    return SECTION_TITLES["en" if lang == "en" else "zh"][kind]


def letter_title(seq: int, name: str, width: int = 4) -> str:
    """The bookmark of one letter: ``0001 王秀英``."""
    return f"{seq:0{width}d} {name}".strip()


@dataclass(frozen=True)
class Section:
    """Pages of one PDF under one bookmark of a print pack.

    ``pages`` are 0-based page ranges of ``source`` in the order wanted (``None``:
    every page). ``labels``, if given, adds a bookmark under the section's for
    each range (e.g. one per letter).
    """

    title: str
    source: Path
    pages: Optional[Sequence[range]] = None
    labels: Sequence[str] = ()


@dataclass(frozen=True)
class Pack:
    """One print pack to write: its path, its sections, and the document title."""

    out: Path
    sections: Sequence[Section]
    title: str = ""


def open_pdf(path: Path) -> PdfReader:
    """A strict :class:`PdfReader`, or a :class:`LetterpressError` naming the file."""
    try:
        reader = PdfReader(str(path), strict=True)
        len(reader.pages)
        return reader
    except (OSError, PdfReadError, ValueError, KeyError) as exc:
        raise LetterpressError(_("cannot read this PDF: %(exc)s", exc=exc), code="bad_pdf",
                               where=Where(file=str(path)),
                               hint=_("make it again (letterpress build --pdf)")) from exc


def merge_letters(pdfs: Sequence[Path], titles: Sequence[str], out: Path, *,
                  duplex: bool = False, title: str = "",
                  progress: Optional[Progress] = None) -> List[range]:
    """Write all letters into ``out`` in order, one flat bookmark per letter.

    Returns each letter's page range in ``out`` (0-based, with the blank page
    added for ``duplex``), for :class:`Section` ranges of the print packs.
    """
    if len(pdfs) != len(titles) or not pdfs:
        raise ValueError("merge_letters needs one or more PDFs and one title per PDF")
    writer = _writer(title)
    ranges: List[range] = []
    for done, (pdf, mark) in enumerate(zip(pdfs, titles), start=1):
        start = len(writer.pages)
        reader = open_pdf(Path(pdf))
        _copy_pages(writer, reader, [range(len(reader.pages))])
        _release(writer, reader)
        if duplex and (len(writer.pages) - start) % 2:
            _blank(writer)
        writer.add_outline_item(title=mark, page_number=start)
        ranges.append(range(start, len(writer.pages)))
        if progress:
            progress("letters.pdf", done, len(pdfs))
    _write(writer, out)
    return ranges


def print_pack(out: Path, sections: Sequence[Section], *, duplex: bool = False,
               title: str = "") -> List[range]:
    """Write one print pack; returns each section's page range in ``out``.

    With ``duplex`` every section but the last is padded to an even page count, so
    the next starts on a fresh sheet. Letters keep the padding ``merge_letters``
    gave them, so make ``letters.pdf`` with the same ``duplex``.
    """
    return _pack(Pack(Path(out), sections, title), _Readers(), duplex)


def write_print_packs(packs: Sequence[Pack], *, duplex: bool = False,
                      progress: Optional[Progress] = None) -> List[List[range]]:
    """Write every pack, opening each source PDF only once; returns their section ranges."""
    readers = _Readers()
    result = []
    for done, pack in enumerate(packs, start=1):
        result.append(_pack(pack, readers, duplex))
        if progress:
            progress("print packs", done, len(packs))
    return result


def volunteer_sections(letters_pdf: Path, letter_ranges: Sequence[range],
                       letter_titles: Sequence[str], slips: Optional[Section],
                       runsheet: Optional[Path], lang: str = "zh") -> List[Section]:
    """The sections of a volunteer's pack: their letters (by their ranges in
    ``letters.pdf``, bookmarked by title), then ``slips`` (or nothing, when the
    slips go into a separate labels file), then their run sheet."""
    sections = [Section(section_title("letters", lang), Path(letters_pdf), list(letter_ranges),
                        tuple(letter_titles))]
    if slips is not None:
        sections.append(slips)
    if runsheet is not None:
        sections.append(Section(section_title("runsheet", lang), Path(runsheet)))
    return sections


class _Readers:
    """Source PDFs opened on first use and kept for the packs that follow."""

    def __init__(self) -> None:
        self._open: Dict[Path, PdfReader] = {}

    def get(self, path: Path) -> PdfReader:
        key = Path(path).resolve()
        if key not in self._open:
            self._open[key] = open_pdf(key)
        return self._open[key]


def _pack(pack: Pack, readers: _Readers, duplex: bool) -> List[range]:
    writer = _writer(pack.title)
    ranges: List[range] = []
    kept = [s for s in pack.sections if s.pages is None or len(s.pages)]
    for number, section in enumerate(kept):
        reader = readers.get(section.source)
        wanted = [range(len(reader.pages))] if section.pages is None else list(section.pages)
        _check_ranges(wanted, len(reader.pages), section)
        start = len(writer.pages)
        firsts = _copy_pages(writer, reader, wanted)
        parent = writer.add_outline_item(title=section.title, page_number=start)
        for label, first in zip(section.labels, firsts):
            if first is not None:
                writer.add_outline_item(title=label, page_number=first, parent=parent)
        if duplex and number < len(kept) - 1 and (len(writer.pages) - start) % 2:
            _blank(writer)   # the next section starts on a fresh sheet
        ranges.append(range(start, len(writer.pages)))
    if not writer.pages:
        raise ValueError(f"print pack {pack.out} would have no pages")
    _write(writer, pack.out)
    return ranges


def _check_ranges(wanted: Sequence[range], count: int, section: Section) -> None:
    for r in wanted:
        if len(r) and (r.start < 0 or r[-1] >= count):
            raise ValueError(f"pages {r.start + 1}-{r[-1] + 1} are not in {section.source} "
                             f"({count} pages)")


def _copy_pages(writer: PdfWriter, reader: PdfReader,
                wanted: Sequence[range]) -> List[Optional[int]]:
    """Append the pages; returns the output page number where each range begins."""
    firsts: List[Optional[int]] = []
    for r in wanted:
        firsts.append(len(writer.pages) if len(r) else None)
        for i in r:
            writer.add_page(reader.pages[i])
    return firsts


def _release(writer: PdfWriter, reader: PdfReader) -> None:
    """Let go of a source PDF whose pages are all in: resolve its internal links now, then
    drop pypdf's maps to it (they would keep every letter's PDF in memory until the end)."""
    writer.reset_translation(reader)
    if all(hasattr(writer, a) for a in ("_resolve_links", "_unresolved_links",
                                        "_merged_in_pages")):
        writer._resolve_links()
        writer._unresolved_links.clear()
        writer._merged_in_pages.clear()


def _writer(title: str) -> PdfWriter:
    writer = PdfWriter()
    writer.page_mode = "/UseOutlines"
    if title:
        writer.add_metadata({"/Title": title})
    return writer


def _blank(writer: PdfWriter) -> None:
    box = writer.pages[-1].mediabox
    writer.add_blank_page(float(box.width), float(box.height))


def _write(writer: PdfWriter, out: Path) -> None:
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            writer.write(fh)
    writer.close()

