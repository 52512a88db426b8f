"""The build pipeline: check -> letters -> ledger -> slips and run sheets -> manifest.

This is the one place that composes the stages. Each stage takes and returns
the frozen dataclasses of :mod:`letterpress.models`; none imports another's
internals. Nothing is written until the check has passed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from letterpress.config import Settings
from letterpress.errors import CheckFailed, InputError, Problem, Where, warning
from letterpress.files import numbered_filename, safe_filename, staged_dir, write_csv
from letterpress.i18n import _
from letterpress.models import BatchInfo, Household, Progress, Volunteer
from letterpress.pipeline import letters as letters_mod
from letterpress.resources import resolve_template


@dataclass(frozen=True)
class Checked:
    """What the check found: the ordered households and every problem."""

    settings: Settings
    households: Tuple[Household, ...]
    headers: Tuple[str, ...]
    template_path: Path
    problems: Tuple[Problem, ...]
    source: str
    encoding: Optional[str] = None

    @property
    def errors(self) -> List[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> List[Problem]:
        return [p for p in self.problems if not p.is_error]


@dataclass(frozen=True)
class BuildResult:
    out: Path
    title: str
    households: int
    volunteers: int
    letters: int
    warnings: Tuple[Problem, ...] = ()
    files: Tuple[Path, ...] = ()
    ledger: str = ""
    base_url: str = ""
    new: int = 0
    kept: int = 0
    withdrawn: int = 0
    pdf_error: Optional[Exception] = None    # letters LibreOffice could not convert


def batch_title(settings: Settings) -> str:
    """The batch title: ``--batch``, else the date and the recipient list's name."""
    if settings.title:
        return settings.title
    stem = settings.recipients.stem if settings.recipients else "batch"
    return f"{settings.batch_date.isoformat()} {stem}"


def out_dir(settings: Settings) -> Path:
    return settings.out or Path("output") / safe_filename(batch_title(settings), "batch")


def check(settings: Settings, *, with_codes: bool = False) -> Checked:
    """Read the list and the template and report every problem at once (writes nothing)."""
    from letterpress.docx.template import CompiledTemplate
    from letterpress.recipients import clean as recipients

    if settings.recipients is None:
        raise InputError(_("no recipient list given"), code="no_recipients",
                         hint=_("give --recipients FILE (.xlsx or .csv), or recipients = "
                                "\"...\" under [batch] in letterpress.toml"))
    if not Path(settings.recipients).is_file():
        raise InputError(_("recipient list %(recipients)s does not exist",
                           recipients=settings.recipients),
                         code="no_recipients", where=Where(file=str(settings.recipients)),
                         hint=_("check the path and the file name"))
    rl = recipients.load(settings.recipients, encoding=settings.encoding, sheet=settings.sheet,
                         aliases=settings.columns)
    problems: List[Problem] = list(rl.problems)
    template_path = resolve_template(settings.template, settings.lang)
    tpl = CompiledTemplate(str(template_path))
    problems += letters_mod.check_template(
        tpl.variables(), rl.recipients, rl.headers, settings.context.keys(),
        template_path.name, with_codes)
    if with_codes:
        problems += _font_problems(settings, rl.recipients, rl.source)
    ordered = recipients.delivery_order(rl.recipients)
    households = tuple(Household(seq=i, recipient=r) for i, r in enumerate(ordered, start=1))
    sample = households[0] if households and not any(p.is_error for p in problems) else None
    problems += letters_mod.check_safety(tpl, _options(settings, template_path, len(households)),
                                         sample, template_path.name)
    return Checked(settings, households, tuple(rl.headers), template_path, tuple(problems),
                   rl.source, getattr(rl, "encoding", None))


def _font_problems(settings: Settings, recipients, source: str) -> List[Problem]:
    from letterpress.slips import fonts

    choice = fonts.find_font(settings.font)
    problems: List[Problem] = []
    if choice.warning:
        problems.append(warning("font_fallback", choice.warning,
                                hint=_("install a CJK TrueType font (Debian: "
                                       "fonts-wqy-microhei) or give --font PATH")))
    if not choice.embedded:
        return problems
    def text(r) -> str:
        return "".join((r.name, r.honorific, r.address, r.notes, r.volunteer, r.package))

    # The font is asked once about every character of the list; rows are looked at
    # again only when some character is missing.
    everything: set = set()
    for r in recipients:
        everything.update(text(r))
    absent = fonts.missing_glyphs("".join(everything), choice)
    for r in recipients if absent else ():
        missing = absent.intersection(text(r))
        if missing:
            problems.append(warning(
                "missing_glyph", _("the slip font %(name)s cannot draw %(join)s; those "
                                   "characters will print as boxes",
                                   name=choice.name, join=' '.join(sorted(missing))),
                Where(file=source, row=r.row), _("give --font with a font that has them, or "
                                                 "write the name another way")))
    return problems


def _checked_or_fail(settings: Settings, with_codes: bool) -> Checked:
    checked = check(settings, with_codes=with_codes)
    if checked.errors:
        raise CheckFailed(checked.problems)
    return checked


def _letter_options(settings: Settings, checked: Checked) -> letters_mod.LetterOptions:
    return _options(settings, checked.template_path, len(checked.households))


def _options(settings: Settings, template: Path, total: int) -> letters_mod.LetterOptions:
    return letters_mod.LetterOptions(
        template=str(template), batch=batch_title(settings), org=settings.org,
        date=settings.batch_date, lang=settings.lang, package=settings.package,
        total=total, extra=tuple(settings.context.items()), qr_width_mm=settings.qr_width_mm)


def letters(settings: Settings, progress: Optional[Progress] = None) -> BuildResult:
    """``letterpress letters``: check, then the letters, ``letters.docx`` and the manifest."""
    checked = _checked_or_fail(settings, with_codes=False)
    out = out_dir(settings)
    result = letters_mod.render_letters(checked.households, _letter_options(settings, checked),
                                        out, jobs=settings.jobs, progress=progress)
    write_manifest(out / "manifest.csv", checked.households, result.files, with_codes=False)
    return BuildResult(out, batch_title(settings), len(checked.households),
                       len(volunteers_of(checked.households)), result.count,
                       tuple(checked.warnings) + _unassigned(checked.households),
                       (result.merged, result.letters_dir, out / "manifest.csv"))


def build(settings: Settings, progress: Optional[Progress] = None) -> BuildResult:
    """``letterpress build``: check, register in the ledger, letters, slips, run sheets, manifest."""
    from letterpress import network
    from letterpress.ledger import Ledger

    if settings.pdf:
        from letterpress.printing.libreoffice import require_soffice

        require_soffice()       # before anything else: --pdf cannot work without it
    checked = _checked_or_fail(settings, with_codes=True)
    out = out_dir(settings)
    title = batch_title(settings)
    base_url = settings.base_url or network.default_base_url()
    extra: List[Problem] = list(_unassigned(checked.households))
    if network.is_loopback_url(base_url):
        extra.append(warning(
            "loopback_url", _("the codes point at %(base_url)s, which phones cannot open",
                              base_url=base_url),
            hint=_("connect this computer to the volunteers' network, or give a stable address "
                   "with --base-url http://ADDRESS:8470 (base_url in letterpress.toml)")))
    info = BatchInfo(title=title, org=settings.org, date=settings.batch_date, lang=settings.lang)
    ledger = Ledger.open(settings.db, create=True)
    try:
        reg = ledger.register_batch(info, checked.households, base_url)
        ledger.save_build_settings(reg.batch_id, build_record(settings, out, checked.template_path,
                                                               base_url))
    finally:
        ledger.close()
    households = tuple(reg.households)
    extra += list(reg.warnings)
    result = letters_mod.render_letters(households, _letter_options(settings, checked), out,
                                        jobs=settings.jobs, progress=progress)
    slip_files = write_slips(settings, info, households, reg.volunteers, out, progress)
    write_manifest(out / "manifest.csv", households, result.files, with_codes=True)
    files = (result.merged, result.letters_dir) + slip_files + (out / "manifest.csv",)
    pdf_error = None
    if settings.pdf:
        made = print_pdfs(settings, info, households, result.files, out, progress)
        files += (made.letters_pdf, out / "print")
        pdf_error = made.error
    return BuildResult(out, title, len(households), len(volunteers_of(households)), result.count,
                       tuple(checked.warnings) + tuple(extra), files,
                       ledger=ledger.describe(), base_url=base_url, new=reg.new, kept=reg.kept,
                       withdrawn=reg.withdrawn, pdf_error=pdf_error)


def print_pdfs(settings: Settings, info: BatchInfo, households: Sequence[Household],
               letter_files: Sequence[str], out: Path, progress: Optional[Progress] = None):
    """``letters.pdf`` and ``print/NN-name.pdf`` per volunteer (see :mod:`letterpress.printing.build`)."""
    from letterpress.printing import build as printing
    from letterpress.slips import fonts

    return printing.make_pdfs(
        out, households, letter_files, volunteers_of(households), info, layout=settings.slip_layout,
        fonts=fonts.find_font(settings.font), package=settings.package,
        slip_fields=settings.slip_fields, jobs=settings.jobs, duplex=settings.duplex,
        progress=progress)


def volunteers_of(households: Sequence[Household]) -> List[str]:
    """Volunteer names in order of first appearance ("" for unassigned, last)."""
    seen: Dict[str, None] = {}
    for h in households:
        seen.setdefault(h.volunteer, None)
    names = [n for n in seen if n]
    return names + ([""] if "" in seen else [])


def _unassigned(households: Sequence[Household]) -> Tuple[Problem, ...]:
    rows = [h.recipient.row for h in households if not h.volunteer]
    if not rows:
        return ()
    shown = ", ".join(map(str, rows[:12])) + (" …" if len(rows) > 12 else "")
    return (warning("no_volunteer", _("%(count)s household(s) have no volunteer (rows "
                                      "%(shown)s)", count=len(rows), shown=shown),
                    hint=_("they come last and get the 'unassigned' run sheet; fill the "
                           "volunteer column to give them one")),)


def write_slips(settings: Settings, info: BatchInfo, households: Sequence[Household],
                volunteers: Sequence[Volunteer], out: Path,
                progress: Optional[Progress] = None) -> Tuple[Path, ...]:
    """``slips.pdf`` and ``runsheets/NN-name.pdf`` (one per volunteer, delivery order).

    With ``jobs > 1`` the run sheets are written by a second process while this
    one writes the slips.
    """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from letterpress.slips import fonts, slips

    choice = fonts.find_font(settings.font)
    total = len(households)
    by_name = {v.name: v for v in volunteers}
    groups: Dict[str, List[Household]] = {name: [] for name in volunteers_of(households)}
    for h in households:
        groups[h.volunteer].append(h)
    with staged_dir(out / "runsheets") as staging:
        sheets = [(by_name.get(name) or Volunteer(index=index, name=name), mine,
                   staging / numbered_filename(index, name, "unassigned"))
                  for index, (name, mine) in enumerate(groups.items(), start=1)]

        def write_all_slips() -> None:
            slips.write_slips(households, out / "slips.pdf", info=info, total=total,
                              layout=settings.slip_layout, fonts=choice, package=settings.package,
                              slip_fields=settings.slip_fields, progress=progress)

        if settings.jobs > 1 and total >= 200:
            method = "fork" if hasattr(os, "fork") else "spawn"
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method)) as pool:
                sheets_done = pool.submit(write_runsheets, sheets, info, total, choice,
                                          settings.lang)
                write_all_slips()
                sheets_done.result()
        else:
            write_all_slips()
            write_runsheets(sheets, info, total, choice, settings.lang, progress)
    return out / "slips.pdf", out / "runsheets"


def write_runsheets(sheets, info: BatchInfo, total: int, fonts, lang: str,
                    progress: Optional[Progress] = None) -> None:
    """Each ``(volunteer, households, path)`` of ``sheets`` as a run sheet."""
    from letterpress.slips import slips

    for done, (volunteer, mine, path) in enumerate(sheets, start=1):
        slips.write_runsheet(volunteer, mine, path, info=info, total=total, fonts=fonts,
                             lang=lang)
        if progress:
            progress("run sheets", done, len(sheets))


MANIFEST_HEADER = ("seq", "id", "name", "address", "volunteer", "letter")


def write_manifest(path: Path, households: Sequence[Household], letter_files: Sequence[str],
                   with_codes: bool) -> None:
    """``manifest.csv``: one row per household in delivery order (UTF-8 with BOM)."""
    header = MANIFEST_HEADER + (("code", "url") if with_codes else ())
    rows = []
    for h, letter in zip(households, letter_files):
        row = [h.seq, h.id, h.name, h.address, h.volunteer, letter]
        if with_codes:
            row += [h.code, h.url]
        rows.append(row)
    write_csv(path, header, rows)


def build_record(settings: Settings, out: Path, template: Path, base_url: str) -> dict:
    """What the ledger keeps about how a batch was built (no personal data)."""
    return {
        "out": str(Path(out).resolve()), "template": str(Path(template).resolve()),
        "org": settings.org, "package": settings.package, "lang": settings.lang,
        "context": dict(settings.context), "layout": settings.slip_layout,
        "slip_fields": list(settings.slip_fields),
        "font": str(settings.font) if settings.font else None,
        "qr_width_mm": settings.qr_width_mm, "base_url": base_url,
    }
