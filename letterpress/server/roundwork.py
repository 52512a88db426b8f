"""What the console does to a round, over the same library calls as the CLI.

Check, preview, build, reprint, report and purge a round whose files all live
in its own folder (``ROUNDS/<id>/``: ``uploads/``, ``preview/``, ``out/``).
No Flask here: the JSON API and the HTML pages both call these functions.
"""
from __future__ import annotations

import datetime as _dt
import os
import secrets
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, List, Optional

from letterpress.config import Settings, parse_date
from letterpress.errors import LetterpressError, Problem
from letterpress.ledger import rounds

#: Files a built round offers for download (path inside ``out/``), in this order.
DOWNLOADS = ("letters.docx", "letters.pdf", "slips.pdf", "runsheets.zip", "manifest.csv")
REPORTS = ("report.xlsx", "report.csv")


def folder_of(rounds_dir: Path, rid: int) -> Path:
    return (Path(rounds_dir) / str(int(rid))).resolve()


def db_url(ledger) -> str:
    return ledger.url.render_as_string(hide_password=False)


def settings_for(ledger, rnd: dict, folder: Path, pdf: bool = False) -> Settings:
    template = (str(folder / rnd["template_file"]) if rnd.get("template_file")
                else rnd.get("template_name") or rnd.get("lang") or "zh")
    return Settings(
        recipients=folder / rnd["recipients_file"] if rnd.get("recipients_file") else None,
        template=template, out=folder / "out", title=rnd["title"], org=rnd.get("org", ""),
        date=parse_date(rnd["date"]) if rnd.get("date") else None,
        package=rnd.get("package", ""), lang=rnd.get("lang", "zh"),
        base_url=rnd.get("base_url") or None, layout=rnd.get("layout") or None,
        db=db_url(ledger), pdf=pdf)


def problem_json(p: Problem) -> dict:
    return {"severity": p.severity, "code": p.code, "message": p.message, "row": p.where.row,
            "column": p.where.column, "hint": p.hint}


def error_problem(exc: LetterpressError) -> dict:
    return {"severity": "error", "code": exc.code, "message": exc.message, "row": exc.where.row,
            "column": exc.where.column, "hint": exc.hint}


def check(ledger, rnd: dict, folder: Path) -> dict:
    """Check the round's list and letter; keep the findings on the round and return it.

    A list that cannot be read at all raises (the caller answers 400).
    """
    from letterpress.pipeline import build

    checked = build.check(settings_for(ledger, rnd, folder), with_codes=True)
    problems = sorted(checked.problems, key=lambda p: (not p.is_error,
                                                       p.where.row or 0))
    hs = checked.households
    summary = {"households": len(hs), "volunteers": len(build.volunteers_of(hs)),
               "compounds": len({h.recipient.compound for h in hs if h.recipient.compound})}
    found = {"problems": [problem_json(p) for p in problems], "summary": summary,
             "can_build": not checked.errors,
             "checked": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    try:
        _previews(checked, folder)
    except (LetterpressError, OSError) as exc:     # a preview is a help, never a blocker
        found["preview_error"] = str(exc)
    return rounds.update(ledger, rnd["id"], check=found)


def _pdf_page_png(pdf: Path, png: Path, width: int = 900) -> bool:
    """Page 1 of ``pdf`` as ``png`` (poppler's pdftoppm, else pypdfium2); False when neither.

    Written under a temporary name and renamed, so a page never shows half a picture."""
    part = png.with_name(png.stem + ".part.png")
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-singlefile", "-f", "1", "-l", "1",
                        "-scale-to-x", str(width), "-scale-to-y", "-1", str(pdf),
                        str(part.with_suffix(""))], check=True, capture_output=True, timeout=60)
    else:
        try:
            import pypdfium2 as pdfium  # type: ignore[import-untyped]
        except ImportError:
            return False
        page = pdfium.PdfDocument(str(pdf))[0]
        page.render(scale=width / page.get_width()).to_pil().save(part)
    if not part.is_file():
        return False
    os.replace(part, png)
    return True


def _previews(checked, folder: Path) -> None:
    """``preview/letter.docx`` + ``letter.txt`` and ``preview/slips.png`` from the first households
    (sample codes); the letter's picture is made later by :func:`letter_picture`.

    Written in a folder of its own and swapped in whole, so a page or a picture job that is
    still reading the previous preview never sees a half-made or half-removed one."""
    from letterpress.ledger import codes

    s = checked.settings
    sample = []
    for h in checked.households[:8]:
        code = codes.printed(codes.new_code())
        sample.append(h.with_code(code, codes.url_for(s.base_url or "http://127.0.0.1:8470",
                                                      code)))
    if not sample:
        return
    folder.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=".preview-", suffix=".part", dir=folder))
    try:
        _write_previews(checked, sample, new)
        _swap_in(new, folder / "preview")
    finally:
        shutil.rmtree(new, ignore_errors=True)


def _write_previews(checked, sample: list, pdir: Path) -> None:
    from letterpress.models import BatchInfo
    from letterpress.pipeline import build
    from letterpress.pipeline import letters as letters_mod
    from letterpress.slips import fonts, slips

    s = checked.settings
    options = build._letter_options(s, checked)
    made = letters_mod.render_letters(sample[:1], options, pdir / "letter", jobs=1)
    first = pdir / "letter" / made.files[0]
    shutil.copyfile(first, pdir / "letter.docx")
    (pdir / "letter.txt").write_text(_docx_text(first), encoding="utf-8")
    info = BatchInfo(title=build.batch_title(s), org=s.org, date=s.batch_date, lang=s.lang)
    slips.write_slips(sample, pdir / "slips.pdf", info=info, total=len(checked.households),
                      layout=s.slip_layout, fonts=fonts.find_font(s.font), package=s.package,
                      slip_fields=s.slip_fields)
    _pdf_page_png(pdir / "slips.pdf", pdir / "slips.png")


def _swap_in(new: Path, pdir: Path) -> None:
    """Put the finished folder ``new`` where ``pdir`` is, the old one moved aside first."""
    for _attempt in range(5):
        old = pdir.with_name(f".preview-{secrets.token_hex(4)}.old")
        try:
            pdir.rename(old)
        except FileNotFoundError:
            pass
        try:
            new.rename(pdir)
        except OSError:             # another check swapped its preview in meanwhile: again
            shutil.rmtree(old, ignore_errors=True)
            continue
        shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(f"could not replace {pdir}")


def _docx_text(path: Path) -> str:
    import docx

    return "\n".join(p.text for p in docx.Document(str(path)).paragraphs)


def letter_picture(folder: Path, progress: Callable) -> None:
    """Page 1 of the preview letter as ``preview/letter.png`` (needs LibreOffice).

    LibreOffice works on a private copy; the picture is put in only if the preview it was
    made from is still the current one (a newer upload may have replaced it meanwhile)."""
    from letterpress.printing import libreoffice

    letter = folder / "preview" / "letter.docx"
    if libreoffice.find_soffice() is None or not letter.is_file():
        return
    progress("preview", 0, 1)
    work = Path(tempfile.mkdtemp(prefix=".picture-", dir=folder))
    try:
        source = letter.read_bytes()
        (work / "letter.docx").write_bytes(source)
        libreoffice.convert([work / "letter.docx"], work, jobs=1, timeout=120)
        if (work / "letter.pdf").is_file() and _pdf_page_png(work / "letter.pdf",
                                                             work / "letter.png"):
            try:
                if letter.read_bytes() == source:
                    os.replace(work / "letter.png", letter.with_name("letter.png"))
            except OSError:         # the preview was replaced or removed: its own job follows
                pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress("preview", 1, 1)


def build_round(ledger, rid: int, folder: Path, pdf: bool, who: str,
                progress: Callable) -> None:
    """Build the round (the job's work): ledger, letters, slips, run sheets, PDFs, zip."""
    from letterpress.ledger import accounts
    from letterpress.pipeline import build

    rnd = rounds.get(ledger, rid)
    result = build.build(settings_for(ledger, rnd, folder, pdf=pdf), progress)
    zip_runsheets(folder / "out")
    batch = ledger.find_batch(rnd["title"])
    rounds.update(ledger, rid, batch_id=batch.id, built=_dt.datetime.now(
        _dt.timezone.utc).isoformat(timespec="seconds"), built_by=who,
        pdf_error=str(result.pdf_error) if result.pdf_error else None)
    accounts.log_action(ledger, who, "build", rnd["title"],
                        f"{result.households} households, pdf={pdf}")


def zip_runsheets(out: Path) -> None:
    sheets = sorted((out / "runsheets").glob("*.pdf"))
    packs = sorted((out / "print").glob("*.pdf")) if (out / "print").is_dir() else []
    tmp = out / "runsheets.zip.part"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sheets:
            zf.write(p, f"runsheets/{p.name}")
        for p in packs:
            zf.write(p, f"print/{p.name}")
    tmp.replace(out / "runsheets.zip")


def files(rnd: dict, folder: Path) -> List[dict]:
    """The round's downloads: ``{"name", "bytes"}`` with ``name`` inside ``out/``."""
    if rnd.get("purged") or not rnd.get("batch_id"):
        return []
    out = folder / "out"
    found = [{"name": n, "bytes": (out / n).stat().st_size} for n in DOWNLOADS
             if (out / n).is_file()]
    if (out / "print").is_dir():
        found += [{"name": f"print/{p.name}", "bytes": p.stat().st_size}
                  for p in sorted((out / "print").glob("*.pdf"))]
    found += [{"name": n, "bytes": None} for n in REPORTS]
    return found


def file_path(rnd: dict, folder: Path, name: str) -> Optional[Path]:
    """The file a download name stands for, only if it is one of the round's files."""
    if name not in {f["name"] for f in files(rnd, folder)}:
        return None
    path = (folder / "out" / name).resolve()
    if not path.is_relative_to((folder / "out").resolve()):
        return None
    return path


def make_report(ledger, rnd: dict, folder: Path, name: str) -> Path:
    from letterpress.ledger import operations

    path = folder / "out" / name
    operations.report(db_url(ledger), rnd["title"], name.rsplit(".", 1)[1], path)
    return path


def reprint(ledger, rid: int, folder: Path, who: str, progress: Callable) -> int:
    """New codes for every household not yet delivered; the downloads are made again."""
    from letterpress.ledger import accounts
    from letterpress.pipeline import rebuild

    rnd = rounds.get(ledger, rid)
    result = rebuild.reprint(Settings(db=db_url(ledger)), rnd["title"], outstanding=True,
                             progress=progress)
    zip_runsheets(folder / "out")
    accounts.log_action(ledger, who, "reprint", rnd["title"], f"{result.count} new codes")
    return result.count


def purge(ledger, rid: int, folder: Path, who: str) -> None:
    """Personal data out of the ledger, and every file of the round deleted; counts stay."""
    from letterpress.ledger import accounts, operations

    rnd = rounds.get(ledger, rid)
    if rnd.get("batch_id"):
        operations.purge(db_url(ledger), operations.purge_plan(db_url(ledger), rnd["title"]))
    leftovers = [*folder.glob(".preview-*"), *folder.glob(".picture-*")]  # a killed check's
    for sub in [folder / "uploads", folder / "preview", folder / "out", *leftovers]:
        shutil.rmtree(sub, ignore_errors=True)
    rounds.update(ledger, rid, purged=True, check=None, recipients_file=None)
    accounts.log_action(ledger, who, "purge", rnd["title"])
