"""Console operations shared by the JSON API and the HTML pages (one code path for both)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Mapping

from flask import current_app, url_for

from letterpress.choices import DEFAULT_LAYOUT, LANGS, LAYOUTS
from letterpress.config import LARGE_PRINT, LARGE_PRINT_LAYOUT, parse_date
from letterpress.errors import InputError, LetterpressError
from letterpress.i18n import _
from letterpress.ledger import accounts, rounds
from letterpress.resources import BUILTIN_TEMPLATES
from letterpress.server import roundwork, uploads
from letterpress.server.jobs import Job, JobQueue

#: Stages a build goes through, in order (the progress callback's names).
BUILD_STAGES = ["letters", "slips", "run sheets", "pdf", "letters.pdf", "print packs"]


def ledger():
    return current_app.extensions["letterpress"].ledger


def jobs() -> JobQueue:
    return current_app.extensions["letterpress_jobs"]


def folder(rid: int) -> Path:
    return roundwork.folder_of(current_app.config["LETTERPRESS_ROUNDS_DIR"], rid)


def _limit() -> int:
    return int(current_app.config["LETTERPRESS_UPLOAD_LIMIT"])


def upload_cap() -> int:
    """Largest request body of an upload form: a list and a template."""
    return 2 * _limit() + 1024 * 1024


def round_fields(form: Mapping[str, str]) -> dict:
    """The letter settings of a new round from a form, checked (InputError ``bad_field``)."""
    def bad(what: str, hint: str) -> InputError:
        return InputError(_("%(what)s is not valid", what=what), code="bad_field", hint=hint)

    fields = {k: str(form.get(k, "") or "").strip()[:300]
              for k in ("org", "package", "base_url", "date")}
    if fields["date"]:
        fields["date"] = parse_date(fields["date"]).isoformat()
    lang = form.get("lang") or "zh"
    if lang not in LANGS:
        raise bad("lang", _("use zh or en"))
    name = form.get("template_name") or lang
    if name not in BUILTIN_TEMPLATES:
        raise bad("template_name", _("use one of %(choices)s", choices=", ".join(BUILTIN_TEMPLATES)))
    layout = form.get("layout") or (LARGE_PRINT_LAYOUT if name in LARGE_PRINT else DEFAULT_LAYOUT)
    if layout not in LAYOUTS:
        raise bad("layout", _("use one of %(choices)s", choices=", ".join(LAYOUTS)))
    base = fields["base_url"]
    if base and not base.lower().startswith(("http://", "https://")):
        raise bad("base_url", _("for example %(example)s", example="http://192.168.1.20:8470"))
    if not base:
        from letterpress import network
        fields["base_url"] = network.default_base_url()
    return dict(fields, lang=lang, layout=layout, template_name=name)


def _file(files, name: str):
    f = files.get(name)
    return f if f is not None and (f.filename or f.content_length) else None


def create_round(form, files, who: str) -> dict:
    """Check the uploads, make the round, keep its files, check it. Raises for 400/409/413."""
    fields = round_fields(form)
    listed = _file(files, "recipients")
    if listed is None:
        raise InputError(_("no recipient list was uploaded"), code="no_recipients",
                         hint=_("choose the Excel or CSV file of the households"))
    data, suffix = uploads.accept(listed.stream, "recipients", _limit())
    tpl = _file(files, "template")
    template = uploads.accept(tpl.stream, "template", _limit()) if tpl is not None else None
    rnd = rounds.create(ledger(), form.get("title", ""), dict(fields, created_by=who))
    where = folder(rnd["id"])
    try:
        rel = uploads.save(data, suffix, where, "recipients")
        changes = {"recipients_file": rel}
        if template is not None:
            changes["template_file"] = uploads.save(template[0], ".docx", where, "template")
        rnd = rounds.update(ledger(), rnd["id"], **changes)
        rnd = roundwork.check(ledger(), rnd, where)
    except LetterpressError:
        rounds.delete(ledger(), rnd["id"])
        shutil.rmtree(where, ignore_errors=True)
        raise
    accounts.log_action(ledger(), who, "create_round", rnd["title"])
    _queue_preview(rnd)
    return rnd


def replace_recipients(rnd: dict, files, who: str) -> dict:
    """A corrected list for the round, checked; the previous list is kept until it reads."""
    listed = _file(files, "recipients")
    if listed is None:
        raise InputError(_("no recipient list was uploaded"), code="no_recipients",
                         hint=_("choose the Excel or CSV file of the households"))
    data, suffix = uploads.accept(listed.stream, "recipients", _limit())
    where = folder(rnd["id"])
    rel = uploads.save(data, suffix, where, "recipients")
    try:
        checked = roundwork.check(ledger(), dict(rnd, recipients_file=rel), where)
    except LetterpressError:
        (where / rel).unlink(missing_ok=True)
        raise
    old = rnd.get("recipients_file")
    rnd = rounds.update(ledger(), rnd["id"], recipients_file=rel, check=checked["check"],
                        replaced_by=who)
    if old and old != rel:
        (where / old).unlink(missing_ok=True)
    accounts.log_action(ledger(), who, "upload", rnd["title"])
    _queue_preview(rnd)
    return rnd


def _queue_preview(rnd: dict) -> None:
    where = folder(rnd["id"])
    try:
        jobs().submit(rnd["id"], "preview", lambda progress: roundwork.letter_picture(
            where, progress))
    except Exception:   # Busy: a build is queued; the preview can wait for the next upload
        pass


def start_build(rnd: dict, pdf: bool, who: str) -> Job:
    """Queue the round's build (:class:`letterpress.server.jobs.Busy` when one is active)."""
    led, where, rid = ledger(), folder(rnd["id"]), rnd["id"]
    return jobs().submit(rid, "build", lambda progress: roundwork.build_round(
        led, rid, where, pdf, who, progress))


def tally(batch_id: int):
    """The batch's live counts (:mod:`letterpress.ledger.livetally`), brought up to date."""
    return current_app.extensions["letterpress_tallies"].of(ledger(), batch_id)


def counts(rnd: dict) -> dict:
    if not rnd.get("batch_id"):
        n = (rnd.get("check") or {}).get("summary", {}).get("households", 0)
        return {"households": n, "delivered": 0, "failed": 0, "outstanding": n, "withdrawn": 0}
    return tally(rnd["batch_id"]).counts()


def volunteers(rnd: dict) -> list:
    if not rnd.get("batch_id") or rnd.get("purged"):
        return []
    per = {v["name"]: v["households"] for v in tally(rnd["batch_id"]).by_volunteer()}
    return [{"name": v.name, "households": per.get(v.name, 0), "badge_url": v.url}
            for v in ledger().volunteers(rnd["batch_id"])]


def round_json(rnd: dict, brief: bool = False) -> dict:
    c = counts(rnd)
    body = {"id": rnd["id"], "title": rnd["title"], "households": c["households"],
            "counts": {k: c[k] for k in ("delivered", "failed", "outstanding", "withdrawn")},
            "built": rnd.get("built"), "purged": bool(rnd.get("purged"))}
    if brief:
        return body
    body["files"] = [dict(f, url=url_for("api_rounds.file", rid=rnd["id"], name=f["name"],
                                         _external=True))
                     for f in roundwork.files(rnd, folder(rnd["id"]))]
    body["volunteers"] = volunteers(rnd)
    job = jobs().for_round(rnd["id"], "build")
    body["build"] = job.as_json() if job else None
    return body
