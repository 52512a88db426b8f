"""Print-ready PDFs of a built batch: ``letters.pdf`` and one print pack per volunteer.

Letters are converted with LibreOffice (:mod:`letterpress.printing.libreoffice`), joined in
delivery order with a bookmark per household, and each volunteer gets
``print/NN-name.pdf``: their letters in route order, then their slips (on a
fresh sheet; label layouts go into ``print/NN-name-labels.pdf`` instead), then
their run sheet. A letter LibreOffice cannot convert is named in the result;
the rest of the batch completes.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

from letterpress.files import numbered_filename, staged_dir
from letterpress.models import BatchInfo, Household, Progress


@dataclass(frozen=True)
class PdfResult:
    letters_pdf: Path
    packs: Tuple[Path, ...]
    converted: int
    failed: Tuple[Tuple[str, str], ...]     # (letter file, reason)
    error: Optional[Exception] = None       # a ConversionFailed naming them, when any failed


def make_pdfs(out: Path, households: Sequence[Household], letter_files: Sequence[str],
              volunteers: Sequence[str], info: BatchInfo, *, layout: str, fonts, package: str,
              slip_fields: Sequence[str] = (), jobs: int = 1, duplex: bool = False,
              timeout: float = 120, progress: Optional[Progress] = None,
              ours: Optional[Callable[[str], bool]] = None) -> PdfResult:
    """Convert ``out``'s letters and write ``letters.pdf`` and ``print/``.

    ``letter_files`` are the letters' paths relative to ``out`` (as in the
    manifest), one per household; ``volunteers`` the names in run-sheet order
    ("" for unassigned), so pack ``NN`` matches ``runsheets/NN-name.pdf``.
    """
    from letterpress.printing import libreoffice as pdf
    from letterpress.printing import packs as printpack
    from letterpress.slips import layouts, slips

    soffice = pdf.require_soffice()
    pdf.remove_stale_workers()          # left by a letterpress that was killed converting
    work = Path(tempfile.mkdtemp(prefix=".pdf-work.", dir=out))
    try:
        docx = [out / f for f in letter_files]
        result = pdf.convert(docx, work / "letters", jobs=jobs, timeout=timeout,
                             progress=progress, soffice=soffice)
        done = [(h, result.pdfs[d]) for h, d in zip(households, docx) if d in result.pdfs]
        width = max(4, len(str(len(households))))
        titles = {h.seq: printpack.letter_title(h.seq, h.name, width) for h, _ in done}
        ranges: Dict[int, range] = {}
        if done:
            got = printpack.merge_letters([p for _, p in done], [titles[h.seq] for h, _ in done],
                                          out / "letters.pdf", duplex=duplex, title=info.title,
                                          progress=progress)
            ranges = {h.seq: r for (h, _), r in zip(done, got)}
        labels = layouts.get(layout).per_page == 1     # label printers: a file of their own
        lang = info.lang
        packs, label_files = [], []
        for index, name in enumerate(volunteers, start=1):
            mine = [h for h in households if h.volunteer == name]
            slip_pdf = work / f"slips-{index:02d}.pdf"
            slips.write_slips(mine, slip_pdf, info=info, total=len(households), layout=layout,
                              fonts=fonts, package=package, slip_fields=slip_fields)
            if labels:
                label_files.append((slip_pdf, numbered_filename(index, name, "unassigned",
                                                                suffix="-labels.pdf")))
                slip_section = None
            else:
                slip_section = printpack.Section(printpack.section_title("slips", lang), slip_pdf)
            sections = printpack.volunteer_sections(
                out / "letters.pdf", [ranges[h.seq] for h in mine if h.seq in ranges],
                [titles[h.seq] for h in mine if h.seq in ranges], slip_section,
                out / "runsheets" / numbered_filename(index, name, "unassigned"), lang)
            if not ranges:
                sections = [s for s in sections if s.source != out / "letters.pdf"]
            packs.append((numbered_filename(index, name, "unassigned"), sections,
                          f"{info.title} · {name or 'unassigned'}"))
        with staged_dir(out / "print", *([ours] if ours else [])) as staging:
            printpack.write_print_packs(
                [printpack.Pack(staging / fname, sections, title)
                 for fname, sections, title in packs], duplex=duplex, progress=progress)
            for source, fname in label_files:
                os.replace(source, staging / fname)
        written = tuple(sorted((out / "print").iterdir()))
        failed = tuple((str(Path(p).relative_to(out)), reason) for p, reason in result.failed)
        return PdfResult(out / "letters.pdf", written, len(done), failed, result.error())
    finally:
        shutil.rmtree(work, ignore_errors=True)
