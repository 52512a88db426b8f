"""The build pipeline: check -> letters -> ledger -> slips and run sheets -> manifest.

This is the one place that composes the stages. Each stage takes and returns
the frozen dataclasses of :mod:`letterpress.models`; none imports another's
internals. Nothing is written until the check has passed.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from letterpress.config import Settings
from letterpress.errors import CheckFailed, InputError, Problem, Where, error, warning
from letterpress.files import (
    check_space,
    numbered_filename,
    safe_filename,
    space_errors,
    write_csv,
)
from letterpress.i18n import _
from letterpress.models import BatchInfo, Household, Progress, Volunteer
from letterpress.packed import Packed
from letterpress.pipeline import letters as letters_mod
from letterpress.pipeline import pictures
from letterpress.resources import resolve_template


@dataclass(frozen=True)
class Checked:
    """What the check found: the ordered households and every problem."""

    settings: Settings
    households: Sequence[Household]    # a tuple, or packed (see check_apart)
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
    tpl = letters_mod.open_template(str(template_path), settings.jinja_plugins, settings.engine)
    problems += letters_mod.check_template(
        tpl.variables(), rl.recipients, rl.headers, settings.context.keys(),
        template_path.name, with_codes)
    if tpl.notice():
        problems.append(warning("docxtpl_fallback", tpl.notice() or "",
                                Where(file=template_path.name),
                                _("the letters are the same; only rendering takes longer")))
    problems += pictures.check(tpl, pictures.rules(settings.pictures), rl.recipients,
                               rl.headers, Path(pictures.list_folder(str(settings.recipients))),
                               template_path.name, rl.source)
    if with_codes:
        problems += _font_problems(settings, rl.recipients, rl.source)
    ordered = recipients.delivery_order(rl.recipients)
    households = tuple(Household(seq=i, recipient=r) for i, r in enumerate(ordered, start=1))
    problems += _name_problems(settings, households, rl.source)
    sample = households[0] if households and not any(p.is_error for p in problems) else None
    problems += letters_mod.check_safety(tpl, _options(settings, template_path, len(households)),
                                         sample, template_path.name)
    return Checked(settings, households, tuple(rl.headers), template_path, tuple(problems),
                   rl.source, getattr(rl, "encoding", None))


def _name_problems(settings: Settings, households: Sequence[Household],
                   source: str) -> List[Problem]:
    """File names (shortened to a number of bytes already) that the output folder's file
    system cannot hold, with the temporary name each is first written under."""
    from letterpress.files import name_max

    if not households:
        return []
    out = out_dir(settings)
    limit = name_max(out)
    first_row: Dict[str, int] = {}
    for h in households:
        first_row.setdefault(h.volunteer, h.recipient.row)
    names = itertools.chain(     # made as they are looked at: a district's are not held
        ((letters_mod.letter_filename(h, len(households)), h.recipient.row, "name")
         for h in households),
        ((numbered_filename(i, v, "unassigned", suffix="-labels.pdf"), first_row[v],
          "volunteer") for i, v in enumerate(volunteers_of(households), start=1)))
    problems = []
    for name, row, column in names:
        need = len(f".{name}.XXXXXXXX.part".encode("utf-8"))
        if need > limit:
            problems.append(error(
                "file_name_too_long", _("the file %(name)r would need a name of %(need)s bytes "
                                        "while it is written; the file system of %(out)s "
                                        "allows %(limit)s", name=name, need=need, out=out,
                                        limit=limit),
                Where(file=source, row=row, column=column),
                _("shorten the name in that row, or give --out a folder on another disk")))
    return problems


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


#: Recipient lists from this size on (bytes) are checked in a process of their own, and
#: their households kept packed (about 8,000 rows of a typical list).
CHECK_APART_FROM = 1 << 20


def check_apart(settings: Settings, *, with_codes: bool = False) -> Checked:
    """:func:`check`; for a large list, in a process of its own, with the households
    kept packed (:class:`letterpress.packed.Packed`).

    Reading a district list (100,000 rows) makes some 120 MiB of short-lived rows and
    cells, scattered among the households that stay: Python keeps that memory for
    reuse rather than give it back. A process of its own gives it all back when it
    ends, and the households come back here in a fifth of their memory, kept in an
    unnamed temporary file (:meth:`letterpress.packed.Packed.spilled`)."""
    from letterpress.pipeline import processes

    try:
        large = Path(settings.recipients or "").stat().st_size >= CHECK_APART_FROM
    except OSError:
        large = False
    if not large:
        return check(settings, with_codes=with_codes)
    checked = processes.run_apart(_check_packed, settings, with_codes, os.getcwd())
    assert isinstance(checked.households, Packed)
    return replace(checked, households=checked.households.spilled())


def _check_packed(settings: Settings, with_codes: bool, cwd: str) -> Checked:
    os.chdir(cwd)      # the paths given are read from where the build was started
    checked = check(settings, with_codes=with_codes)
    return replace(checked, households=Packed.of(checked.households))


def _checked_or_fail(settings: Settings, with_codes: bool) -> Checked:
    checked = check_apart(settings, with_codes=with_codes)
    if checked.errors:
        raise CheckFailed(checked.problems)
    return checked


def _letter_options(settings: Settings, checked: Checked) -> letters_mod.LetterOptions:
    return _options(settings, checked.template_path, len(checked.households))


def _options(settings: Settings, template: Path, total: int) -> letters_mod.LetterOptions:
    return letters_mod.LetterOptions(
        template=str(template), batch=batch_title(settings), org=settings.org,
        date=settings.batch_date, lang=settings.lang, package=settings.package,
        total=total, extra=tuple(settings.context.items()), qr_width_mm=settings.qr_width_mm,
        pictures=pictures.rules(settings.pictures),
        list_dir=pictures.list_folder(str(settings.recipients)), plugins=settings.jinja_plugins,
        engine=settings.engine)


def _letter_files(households: Sequence[Household]) -> Sequence[str]:
    return letters_mod.LetterFiles(households, len(households))


def letters(settings: Settings, progress: Optional[Progress] = None) -> BuildResult:
    """``letterpress letters``: check, then the letters, ``letters.docx`` and the manifest."""
    from letterpress.pipeline import outputs

    checked = _checked_or_fail(settings, with_codes=False)
    out = out_dir(settings)
    title = batch_title(settings)
    need = space_needed(checked, with_codes=False)
    check_space(out, need)
    outputs.sweep(out)
    outputs.check_folder(out, title, itertools.chain(
        ["letters.docx", "manifest.csv", outputs.REUSE_INDEX], _letter_files(checked.households)))
    with space_errors(out, need), outputs.marked(out, title):
        result = letters_mod.render_letters(checked.households,
                                            _letter_options(settings, checked), out,
                                            jobs=settings.jobs, progress=progress)
        write_manifest(out / "manifest.csv", checked.households, result.files, with_codes=False)
    return BuildResult(out, title, len(checked.households),
                       len(volunteers_of(checked.households)), result.count,
                       tuple(checked.warnings) + _unassigned(checked.households),
                       (result.merged, result.letters_dir, out / "manifest.csv"))


def _labels(layout: str) -> bool:
    from letterpress.slips import layouts

    return layouts.get(layout).per_page == 1


def prepare_folder(ledger, settings: Settings, title: str, out: Path,
                   planned: Iterable[str]) -> None:
    """Before a build writes: leftovers of a killed run removed, and the folder checked to
    hold nothing of someone else's where the build writes (see :mod:`outputs`)."""
    from letterpress.pipeline import outputs

    outputs.sweep(out)
    known = next((b for b in ledger.batches() if b.title == title), None)
    recorded: List[str] = []
    if known is not None:
        recorded = outputs.recorded(ledger, known.id, out)
        built_here = ledger.build_settings(known.id).get("out") == outputs.folder_key(out)
        if built_here and not recorded:     # built before the ledger kept a list
            recorded = outputs.legacy_files(out)
    outputs.check_folder(out, title, planned, recorded)


def build(settings: Settings, progress: Optional[Progress] = None) -> BuildResult:
    """``letterpress build``: check, register in the ledger, letters, slips, run sheets, manifest.

    The batch is locked in the ledger while it is written: a second ``build`` of
    it (or of another batch into the same folder) is refused with ``batch_busy``.
    """
    if settings.pdf:
        from letterpress.printing.libreoffice import require_soffice

        require_soffice()       # before anything else: --pdf cannot work without it
    checked = _checked_or_fail(settings, with_codes=True)
    out = out_dir(settings)
    need = space_needed(checked, with_codes=True)
    check_space(out, need)      # before the ledger registers anything
    with space_errors(out, need):
        return _build(settings, checked, out, progress)


def space_needed(checked: Checked, with_codes: bool) -> int:
    """About how many bytes a batch writes: each letter twice (alone and in letters.docx),
    slips and run sheets, and room for the fonts they embed."""
    n = len(checked.households)
    letter = Path(checked.template_path).stat().st_size + 4096
    return n * (2 * letter + (16384 if with_codes else 512)) + 4 * 2**20


def _build(settings: Settings, checked: Checked, out: Path,
           progress: Optional[Progress]) -> BuildResult:
    from letterpress import network
    from letterpress.ledger import Ledger
    from letterpress.pipeline import outputs

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
    planned = outputs.planned_files(_letter_files(checked.households),
                                    volunteers_of(checked.households), pdf=settings.pdf,
                                    labels=_labels(settings.slip_layout))
    ledger = Ledger.open(settings.db, create=True)
    try:
        with ledger.lock(title, [f"out:{outputs.folder_key(out)}"], "build"):
            prepare_folder(ledger, settings, title, out, planned)
            reg = ledger.register_batch(info, checked.households, base_url)
            ledger.save_build_settings(reg.batch_id, build_record(settings, out,
                                                                  checked.template_path,
                                                                  base_url))
            outputs.claim(ledger, reg.batch_id, out, planned)
            with outputs.marked(out, title):
                households = reg.households
                extra += list(reg.warnings)
                result = letters_mod.render_letters(households, _letter_options(settings, checked),
                                                    out, jobs=settings.jobs, progress=progress)
                slip_files = write_slips(settings, info, households, reg.volunteers, out, progress,
                                         keep_pages=True)
                write_manifest(out / "manifest.csv", households, result.files, with_codes=True)
                files = (result.merged, result.letters_dir) + slip_files + (out / "manifest.csv",)
                pdf_error = None
                if settings.pdf:
                    made = print_pdfs(settings, info, households, result.files, out, progress)
                    files += (made.letters_pdf, out / "print")
                    pdf_error = made.error
    finally:
        ledger.close()
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
        progress=progress, ours=_ours("print"))


def _ours(folder: str):
    from letterpress.pipeline import outputs

    return outputs.ours_in(folder)


def volunteers_of(households: Sequence[Household]) -> List[str]:
    """Volunteer names in order of first appearance ("" for unassigned, last)."""
    seen: Dict[str, None] = {}
    for h in households:
        seen.setdefault(h.volunteer, None)
    names = [n for n in seen if n]
    return names + ([""] if "" in seen else [])


def write_slips(settings: Settings, info: BatchInfo, households: Sequence[Household],
                volunteers: Sequence[Volunteer], out: Path, progress: Optional[Progress] = None,
                keep_pages: bool = False) -> Tuple[Path, ...]:
    """``slips.pdf`` and the run sheets (see :func:`letterpress.pipeline.slipfiles.write`)."""
    from letterpress.pipeline import slipfiles

    return slipfiles.write(settings, info, households, volunteers, out, progress, keep_pages)


def _unassigned(households: Sequence[Household]) -> Tuple[Problem, ...]:
    rows = [h.recipient.row for h in households if not h.volunteer]
    if not rows:
        return ()
    shown = ", ".join(map(str, rows[:12])) + (" …" if len(rows) > 12 else "")
    return (warning("no_volunteer", _("%(count)s household(s) have no volunteer (rows "
                                      "%(shown)s)", count=len(rows), shown=shown),
                    hint=_("they come last and get the 'unassigned' run sheet; fill the "
                           "volunteer column to give them one")),)


MANIFEST_HEADER = ("seq", "id", "name", "address", "volunteer", "letter")


def write_manifest(path: Path, households: Sequence[Household], letter_files: Sequence[str],
                   with_codes: bool) -> None:
    """``manifest.csv``: one row per household in delivery order (UTF-8 with BOM)."""
    header = MANIFEST_HEADER + (("code", "url") if with_codes else ())
    def rows():
        for h, letter in zip(households, letter_files):
            row = [h.seq, h.id, h.name, h.address, h.volunteer, letter]
            yield row + [h.code, h.url] if with_codes else row

    write_csv(path, header, rows())


def build_record(settings: Settings, out: Path, template: Path, base_url: str) -> dict:
    """What the ledger keeps about how a batch was built (no personal data)."""
    return {
        "out": str(Path(out).resolve()), "template": str(Path(template).resolve()),
        "org": settings.org, "package": settings.package, "lang": settings.lang,
        "context": dict(settings.context), "layout": settings.slip_layout,
        "slip_fields": list(settings.slip_fields),
        "font": str(settings.font) if settings.font else None,
        "qr_width_mm": settings.qr_width_mm, "base_url": base_url,
        "pictures": {k: list(v) for k, v in settings.pictures.items()},
        "jinja_plugins": list(settings.jinja_plugins), "engine": settings.engine,
    }
