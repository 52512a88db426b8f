"""Making a built batch's documents again from the ledger: slips, reprints, PDFs.

After ``build`` the ledger is the source of truth. These functions read a
batch's households (with their current codes) and the settings it was built
with, and write its documents again through the same stages as ``build``.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

from letterpress.config import Settings
from letterpress.errors import InputError
from letterpress.files import staged_dir
from letterpress.i18n import _
from letterpress.models import BatchInfo, Household, Volunteer
from letterpress.pipeline import letters as letters_mod
from letterpress.pipeline.build import (
    BuildResult,
    Progress,
    volunteers_of,
    write_manifest,
    write_slips,
)


@dataclass(frozen=True)
class Stored:
    """A built batch as the ledger knows it: its settings and current households."""

    batch_id: int
    info: BatchInfo
    settings: Settings
    households: Tuple[Household, ...]
    volunteers: Tuple[Volunteer, ...]

    @property
    def out(self) -> Path:
        """The batch's folder: the one given now, else the one it was built in."""
        assert self.settings.out is not None, "stored_batch always sets it"
        return self.settings.out


def stored_batch(ledger, title: Optional[str], overrides: Settings) -> Stored:
    """Load a built batch: its households (not withdrawn, delivery order) with their codes.

    Options given now (``overrides``: layout, font, slip fields, out) win over
    the ones the batch was built with.
    """
    from letterpress.ledger import codes
    from letterpress.models import Recipient

    batch = ledger.find_batch(title)
    rec = ledger.build_settings(batch.id)
    if not rec:
        raise InputError(_("batch %(title)r was registered by an older letterpress that did "
                           "not keep its build settings", title=batch.title), code="no_build_settings",
                         hint=_("run `letterpress build` for it once more"))
    settings = overrides.with_(
        title=batch.title, org=rec.get("org", ""), date=batch.date, lang=rec.get("lang", "zh"),
        package=rec.get("package", ""), template=rec.get("template"),
        out=overrides.out or Path(rec["out"]), layout=overrides.layout or rec.get("layout"),
        slip_fields=overrides.slip_fields or tuple(rec.get("slip_fields", ())),
        font=overrides.font or (Path(rec["font"]) if rec.get("font") else None),
        context=dict(rec.get("context", {})), qr_width_mm=rec.get("qr_width_mm", 25.0),
        base_url=rec.get("base_url"),
        pictures={k: tuple(v) for k, v in rec.get("pictures", {}).items()},
        jinja_plugins=tuple(rec.get("jinja_plugins", ())), engine=rec.get("engine", "auto"))
    base_url = rec.get("base_url") or batch.base_url
    households = []
    for v in ledger.household_rows(batch.id):
        if v.state == "withdrawn" or not v.code:
            continue
        r = Recipient(row=0, id=v.key, name=v.name, honorific=v.honorific, address=v.address,
                      compound=v.compound, building=v.building, unit=v.unit, room=v.room,
                      phone=v.phone, category=v.category, grid=v.grid, volunteer=v.volunteer,
                      package=v.package, notes=v.notes)
        households.append(Household(seq=v.seq, recipient=r, code=v.code,
                                    url=codes.url_for(base_url, v.code)))
    households.sort(key=lambda h: h.seq)
    info = BatchInfo(title=batch.title, org=settings.org, date=batch.date, lang=settings.lang)
    return Stored(batch.id, info, settings, tuple(households),
                  tuple(ledger.volunteers(batch.id, base_url)))


def _out_of(ledger, batch, overrides: Settings) -> Path:
    rec = ledger.build_settings(batch.id)
    return Path(overrides.out or rec.get("out") or ".")


def _locked(ledger, batch, out: Path, what: str):
    """The batch's lock for ``what``, with the leftovers of a killed run swept away."""
    from letterpress.pipeline import outputs

    lock = ledger.lock(batch.title, [f"out:{outputs.folder_key(out)}"], what)
    try:
        outputs.sweep(out)
    except BaseException:
        lock.release()
        raise
    return lock


def _claim(ledger, stored: Stored, out: Path, files: Sequence[str]) -> None:
    from letterpress.pipeline import outputs

    outputs.claim(ledger, stored.batch_id, out, files)
    outputs.write_marker(out, stored.info.title)


def _sheet_files(stored: Stored) -> list:
    from letterpress.files import numbered_filename

    return [f"runsheets/{numbered_filename(i, n, 'unassigned')}"
            for i, n in enumerate(volunteers_of(stored.households), start=1)]


def slips_again(settings: Settings, title: Optional[str],
                progress: Optional[Progress] = None) -> BuildResult:
    """``letterpress slips``: slips and run sheets of a batch already built, from the ledger.

    A layout, font or slip fields given now become the batch's own, so later
    ``pdf`` and ``reprint`` runs make the same slips.
    """
    from letterpress.ledger import Ledger

    with Ledger.open(settings.db, create=False) as ledger:
        batch = ledger.find_batch(title)
        with _locked(ledger, batch, _out_of(ledger, batch, settings), "slips"):
            stored = stored_batch(ledger, batch.title, settings)
            out = stored.out
            _claim(ledger, stored, out, ["slips.pdf", *_sheet_files(stored)])
            files = write_slips(stored.settings, stored.info, stored.households,
                                stored.volunteers, out, progress)
            record = ledger.build_settings(stored.batch_id)
            record.update(layout=stored.settings.slip_layout,
                          slip_fields=list(stored.settings.slip_fields),
                          font=str(stored.settings.font) if stored.settings.font else None)
            ledger.save_build_settings(stored.batch_id, record)
            described = ledger.describe()
    return BuildResult(out, stored.info.title, len(stored.households),
                       len(volunteers_of(stored.households)), 0, (), files, ledger=described,
                       base_url=stored.settings.base_url or "")


@dataclass(frozen=True)
class ReprintResult:
    title: str
    count: int                   # households given new codes
    folder: Optional[Path]       # what to print: only the reprinted households
    letters_made: bool           # letters were made again (the template shows the code)
    out: Path
    ledger: str = ""
    remade: Tuple[Path, ...] = ()   # print files made again with the new codes
    stale: Tuple[Path, ...] = ()    # files that still show revoked codes (make them again)


def template_uses_codes(template: str, plugins: Sequence[str] = ()) -> bool:
    tpl = letters_mod.open_template(template, plugins)
    return bool(set(tpl.variables()) & set(letters_mod.LEDGER_FIELDS))


def reprint(settings: Settings, title: Optional[str], *, outstanding: bool = False,
            keys: Sequence[str] = (), progress: Optional[Progress] = None) -> ReprintResult:
    """New codes for households not yet delivered (or the ``keys`` given), old codes revoked.

    The batch folder is brought up to date (slips, run sheets, manifest, the
    letters when the template shows the code, and ``letters.pdf`` and the print
    packs when they exist and LibreOffice is there; otherwise they are named in
    ``stale``), and a ``reprint-YYYYmmdd-HHMMSS`` folder holds just the
    reprinted households' slips (and letters) to print.

    The new codes become valid only once every file showing them is written
    (one transaction at the end): a reprint killed half-way leaves the old codes
    working, and running it again finishes it with the same new codes.
    """
    from letterpress.ledger import Ledger

    with Ledger.open(settings.db, create=False) as ledger:
        batch = ledger.find_batch(title)
        out = _out_of(ledger, batch, settings)
        with _locked(ledger, batch, out, "reprint"):
            targets = _targets(ledger, batch, outstanding, keys)
            if not targets:
                return ReprintResult(batch.title, 0, None, False, Path("."), ledger.describe())
            record = ledger.build_settings(batch.id)
            template = record.get("template")
            uses_codes = bool(template and template_uses_codes(
                template, record.get("jinja_plugins", ())))
            if uses_codes:
                _refuse_picture_columns(stored_batch(ledger, batch.title, settings).settings)
            plan = ledger.plan_reprint(batch.id, targets,
                                       f"reprint-{_dt.datetime.now():%Y%m%d-%H%M%S}")
            stored = _with_codes(stored_batch(ledger, batch.title, settings), plan["codes"])
            written = _write_reprint(ledger, stored, plan, uses_codes, progress)
            ledger.commit_reprint(batch.id, plan)
            described = ledger.describe()
    return ReprintResult(stored.info.title, len(plan["codes"]), written[0], uses_codes,
                         stored.out, described, written[1], written[2])


def _refuse_picture_columns(s: Settings) -> None:
    """Letters whose pictures come from a list column cannot be made from the ledger alone."""
    from letterpress.pipeline import pictures

    if any(rule.kind == "column" for rule in pictures.rules(s.pictures)):
        raise InputError(_("the letters take pictures from a column of the recipient list, "
                           "which the ledger does not keep, so they cannot be printed again "
                           "here"), code="reprint_picture_columns",
                         hint=_("run `letterpress build` again with the list: households keep "
                                "their codes"))


def _targets(ledger, batch, outstanding: bool, keys: Sequence[str]) -> list:
    views = list(ledger.household_rows(batch.id))
    if outstanding:
        return [v.key for v in views if v.state in ("outstanding", "failed")]
    known = {v.key for v in views if v.state != "withdrawn"}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise InputError(_("batch %(title)r has no household with id %(ids)s",
                           title=batch.title, ids=", ".join(unknown)),
                         code="unknown_household", hint=_("use the id column of manifest.csv"))
    return list(dict.fromkeys(keys))


def _with_codes(stored: Stored, planned: dict) -> Stored:
    """``stored`` with the households of ``planned`` (recipient id -> code) on their new codes."""
    from dataclasses import replace

    from letterpress.ledger import codes

    base = next((h.url.rsplit("/H/", 1)[0] for h in stored.households if h.url), "")
    households = tuple(h.with_code(codes.printed(planned[h.id]),
                                   codes.url_for(base, planned[h.id]))
                       if h.id in planned else h for h in stored.households)
    return replace(stored, households=households)


def _write_reprint(ledger, stored: Stored, plan: dict, uses_codes: bool,
                   progress: Optional[Progress]):
    """Every file that shows a code, with the planned codes; ``(folder, remade, stale)``."""
    from letterpress.pipeline.outputs import ours_in
    from letterpress.slips import fonts, slips

    s, out = stored.settings, stored.out
    files = [f"letters/{letters_mod.letter_filename(h, len(stored.households))}"
             for h in stored.households]
    folder = out / plan["folder"]
    in_print = sorted(p for p in (out / "print").glob("*.pdf") if ours_in("print")(p.name)) \
        if (out / "print").is_dir() else []
    again = tuple(h for h in stored.households if h.id in plan["codes"])
    claimed = ["slips.pdf", "manifest.csv", *_sheet_files(stored), f"{folder.name}/slips.pdf"]
    if uses_codes:
        claimed += [*files, "letters.docx", f"{folder.name}/letters.docx"]
        claimed += [f"{folder.name}/letters/{letters_mod.letter_filename(h, len(files))}"
                    for h in again]
    _claim(ledger, stored, out, claimed)
    from letterpress.pipeline import pictures

    rules = pictures.rules(s.pictures)
    options = letters_mod.LetterOptions(
        template=s.template or "", batch=stored.info.title, org=s.org, date=s.batch_date, lang=s.lang,
        package=s.package, total=len(stored.households), extra=tuple(s.context.items()),
        qr_width_mm=s.qr_width_mm, pictures=rules, plugins=s.jinja_plugins, engine=s.engine)
    if uses_codes:
        letters_mod.render_letters(stored.households, options, out, jobs=s.jobs,
                                   progress=progress)
    write_slips(s, stored.info, stored.households, stored.volunteers, out, progress)
    write_manifest(out / "manifest.csv", stored.households, files, with_codes=True)
    remade: Tuple[Path, ...] = ()
    stale: Tuple[Path, ...] = ()
    if in_print:
        from letterpress.printing.libreoffice import find_soffice

        if find_soffice() is not None and all((out / f).is_file() for f in files):
            from letterpress.pipeline.build import print_pdfs

            made = print_pdfs(s, stored.info, stored.households, files, out, progress)
            remade = (made.letters_pdf,) + tuple(made.packs)
        else:
            stale = tuple(in_print) + ((out / "letters.pdf",) if uses_codes and
                                       (out / "letters.pdf").exists() else ())
    with staged_dir(folder, ours_in(folder.name)) as staging:
        slips.write_slips(again, staging / "slips.pdf", info=stored.info,
                          total=len(stored.households), layout=s.slip_layout,
                          fonts=fonts.find_font(s.font), package=s.package,
                          slip_fields=s.slip_fields)
        if uses_codes:
            letters_mod.render_letters(again, options, staging, jobs=1)
    return folder, remade, stale


def pdf_again(settings: Settings, title: Optional[str],
              progress: Optional[Progress] = None) -> BuildResult:
    """``letterpress pdf``: letters.pdf and the print packs of a batch already built."""
    from letterpress.ledger import Ledger
    from letterpress.pipeline.build import print_pdfs
    from letterpress.printing.libreoffice import require_soffice

    require_soffice()
    with Ledger.open(settings.db, create=False) as ledger:
        batch = ledger.find_batch(title)
        with _locked(ledger, batch, _out_of(ledger, batch, settings), "pdf"):
            if ledger.pending_reprint(batch.id):
                raise InputError(_("a reprint of %(title)r was interrupted; its new codes are "
                                   "not valid yet", title=batch.title),
                                 code="reprint_unfinished",
                                 hint=_("run the same `letterpress reprint` command again first"))
            stored = stored_batch(ledger, batch.title, settings)
            described = ledger.describe()
            s, out = stored.settings, stored.out
            files = [f"letters/{letters_mod.letter_filename(h, len(stored.households))}"
                     for h in stored.households]
            missing = [f for f in files if not (out / f).is_file()]
            if missing:
                raise InputError(_("%(count)s letter(s) of this batch are missing in %(out)s, "
                                   "e.g. %(missing)s", count=len(missing), out=out,
                                   missing=missing[0]), code="missing_letters",
                                 hint=_("run `letterpress build` again to make the letters, "
                                        "then this"))
            from letterpress.pipeline.build import _labels
            from letterpress.pipeline.outputs import planned_files

            _claim(ledger, stored, out, [f for f in planned_files(
                (), volunteers_of(stored.households), pdf=True, labels=_labels(s.slip_layout))
                if f.startswith("print/") or f == "letters.pdf"])
            made = print_pdfs(s, stored.info, stored.households, files, out, progress)
    return BuildResult(out, stored.info.title, len(stored.households),
                       len(volunteers_of(stored.households)), made.converted, (),
                       (made.letters_pdf, out / "print"), ledger=described,
                       base_url=s.base_url or "", pdf_error=made.error)


@dataclass(frozen=True)
class Reissued:
    """What :func:`reissue_badge` did."""

    title: str
    volunteer: Volunteer
    runsheet: Path                # the volunteer's run sheet, with the new badge
    stale: Tuple[Path, ...]       # print packs still holding the old (dead) badge
    ledger: str = ""


def reissue_badge(settings: Settings, title: Optional[str], name: str) -> Reissued:
    """``letterpress volunteers reissue NAME``: a new badge (every earlier one stops
    working) and the volunteer's run sheet made again with it."""
    from letterpress.files import numbered_filename
    from letterpress.ledger import Ledger
    from letterpress.slips import fonts, slips

    with Ledger.open(settings.db, create=False) as ledger:
        batch = ledger.find_batch(title)
        out = _out_of(ledger, batch, settings)
        with _locked(ledger, batch, out, "volunteers reissue"):
            stored = stored_batch(ledger, batch.title, settings)
            base = next((h.url.rsplit("/H/", 1)[0] for h in stored.households if h.url), None)
            volunteer = ledger.reissue_badge(batch.id, name, base)
            s = stored.settings
            fname = numbered_filename(volunteer.index, name, "unassigned")
            _claim(ledger, stored, stored.out, [f"runsheets/{fname}"])
            mine = [h for h in stored.households if h.volunteer == name]
            path = stored.out / "runsheets" / fname
            slips.write_runsheet(volunteer, mine, path, info=stored.info,
                                 total=len(stored.households), fonts=fonts.find_font(s.font),
                                 lang=s.lang)
            pack = stored.out / "print" / fname         # holds the run sheet with the old badge
            stale = (pack,) if pack.is_file() else ()
            described = ledger.describe()
    return Reissued(batch.title, volunteer, path, stale, described)
