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
        base_url=rec.get("base_url"))
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


def slips_again(settings: Settings, title: Optional[str],
                progress: Optional[Progress] = None) -> BuildResult:
    """``letterpress slips``: slips and run sheets of a batch already built, from the ledger.

    A layout, font or slip fields given now become the batch's own, so later
    ``pdf`` and ``reprint`` runs make the same slips.
    """
    from letterpress.ledger import Ledger

    with Ledger.open(settings.db, create=False) as ledger:
        stored = stored_batch(ledger, title, settings)
        out = stored.out
        files = write_slips(stored.settings, stored.info, stored.households, stored.volunteers,
                            out, progress)
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


def template_uses_codes(template: str) -> bool:
    from letterpress.docx.template import CompiledTemplate

    return bool(set(CompiledTemplate(template).variables()) & set(letters_mod.LEDGER_FIELDS))


def reprint(settings: Settings, title: Optional[str], *, outstanding: bool = False,
            keys: Sequence[str] = (), progress: Optional[Progress] = None) -> ReprintResult:
    """New codes for households not yet delivered (or the ``keys`` given), old codes revoked.

    The batch folder is brought up to date (slips, run sheets, manifest, and the
    letters when the template shows the code), and a ``reprint-YYYYmmdd-HHMMSS``
    folder holds just the reprinted households' slips (and letters) to print.
    """
    from letterpress.ledger import Ledger

    with Ledger.open(settings.db, create=False) as ledger:
        batch = ledger.find_batch(title)
        views = list(ledger.household_rows(batch.id))
        if outstanding:
            targets = [v.key for v in views if v.state in ("outstanding", "failed")]
        else:
            known = {v.key for v in views if v.state != "withdrawn"}
            unknown = [k for k in keys if k not in known]
            if unknown:
                raise InputError(_("batch %(title)r has no household with id %(ids)s",
                                   title=batch.title, ids=", ".join(unknown)),
                                 code="unknown_household",
                                 hint=_("use the id column of manifest.csv"))
            targets = list(keys)
        if not targets:
            return ReprintResult(batch.title, 0, None, False, Path("."), ledger.describe())
        template = ledger.build_settings(batch.id).get("template")
        uses_codes = bool(template and template_uses_codes(template))
        new = ledger.reissue_codes(batch.id, targets)
        stored = stored_batch(ledger, batch.title, settings)
        described = ledger.describe()
    s, out = stored.settings, stored.out
    files = [f"letters/{letters_mod.letter_filename(h, len(stored.households))}"
             for h in stored.households]
    options = letters_mod.LetterOptions(
        template=s.template or "", batch=stored.info.title, org=s.org, date=s.batch_date, lang=s.lang,
        package=s.package, total=len(stored.households), extra=tuple(s.context.items()),
        qr_width_mm=s.qr_width_mm)
    if uses_codes:
        letters_mod.render_letters(stored.households, options, out, jobs=s.jobs,
                                   progress=progress)
    write_slips(s, stored.info, stored.households, stored.volunteers, out, progress)
    write_manifest(out / "manifest.csv", stored.households, files, with_codes=True)
    again = tuple(h for h in stored.households if h.id in new)
    folder = out / f"reprint-{_dt.datetime.now():%Y%m%d-%H%M%S}"
    from letterpress.slips import fonts, slips

    with staged_dir(folder) as staging:
        slips.write_slips(again, staging / "slips.pdf", info=stored.info,
                          total=len(stored.households), layout=s.slip_layout,
                          fonts=fonts.find_font(s.font), package=s.package,
                          slip_fields=s.slip_fields)
        if uses_codes:
            letters_mod.render_letters(again, options, staging, jobs=1)
    return ReprintResult(stored.info.title, len(again), folder, uses_codes, out, described)


def pdf_again(settings: Settings, title: Optional[str],
              progress: Optional[Progress] = None) -> BuildResult:
    """``letterpress pdf``: letters.pdf and the print packs of a batch already built."""
    from letterpress.ledger import Ledger
    from letterpress.pipeline.build import print_pdfs
    from letterpress.printing.libreoffice import require_soffice

    require_soffice()
    with Ledger.open(settings.db, create=False) as ledger:
        stored = stored_batch(ledger, title, settings)
        described = ledger.describe()
    s, out = stored.settings, stored.out
    files = [f"letters/{letters_mod.letter_filename(h, len(stored.households))}"
             for h in stored.households]
    missing = [f for f in files if not (out / f).is_file()]
    if missing:
        raise InputError(_("%(count)s letter(s) of this batch are missing in %(out)s, e.g. "
                           "%(missing)s", count=len(missing), out=out, missing=missing[0]), code="missing_letters",
                         hint=_("run `letterpress build` again to make the letters, then this"))
    made = print_pdfs(s, stored.info, stored.households, files, out, progress)
    return BuildResult(out, stored.info.title, len(stored.households),
                       len(volunteers_of(stored.households)), made.converted, (),
                       (made.letters_pdf, out / "print"), ledger=described,
                       base_url=s.base_url or "", pdf_error=made.error)
