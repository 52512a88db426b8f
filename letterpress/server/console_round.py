"""The staff console's pages, part two: a round's page, build, reprint, purge, badges."""
from __future__ import annotations

import io

from flask import Blueprint, abort, g, redirect, request, send_file, url_for

from letterpress.errors import LedgerError, LetterpressError
from letterpress.i18n import _
from letterpress.ledger import accounts, livetally
from letterpress.server import roundwork
from letterpress.server.console import page, round_or_404, staff_page
from letterpress.server.console_ops import counts, folder, jobs, ledger, start_build, tally
from letterpress.server.jobs import Busy
from letterpress.server.present import bar_widths

bp = Blueprint("console_round", __name__)

#: Outstanding households per page of the round page.
PAGE_SIZE = 25


def _soffice() -> bool:
    from letterpress.printing.libreoffice import find_soffice

    return find_soffice() is not None


@bp.get("/staff/rounds/<rid>", endpoint="round_page")
@staff_page
def round_page(rid: str, error: str = "", notice: str = "", status: int = 200):
    rnd = round_or_404(rid)
    c = counts(rnd)
    files = [dict(f, url=url_for("api_rounds.file", rid=rnd["id"], name=f["name"]))
             for f in roundwork.files(rnd, folder(rnd["id"]))]
    try:
        page_no = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page_no = 1
    rows: list = []
    total = c["outstanding"] if rnd.get("batch_id") and not rnd.get("purged") else 0
    if total:
        ids = tally(rnd["batch_id"]).ids("outstanding", (page_no - 1) * PAGE_SIZE, PAGE_SIZE)
        with ledger().transaction() as conn:
            rows = livetally.rows_of(conn, ids)
    job = jobs().for_round(rnd["id"], "build") or jobs().for_round(rnd["id"], "reprint")
    return page("console/round.html", status, r=rnd, tab="round", c=c, files=files,
                bars=bar_widths(c["delivered"], c["failed"], c["outstanding"]), job=job,
                can_build=bool((rnd.get("check") or {}).get("can_build")), soffice=_soffice(),
                out_rows=rows, out_total=total, page=page_no,
                pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE), error=error, notice=notice)


@bp.post("/staff/rounds/<rid>/build")
@staff_page
def build(rid: str):
    rnd = round_or_404(rid)
    if not (rnd.get("check") or {}).get("can_build") or rnd.get("purged"):
        return round_page.__wrapped__(rid, error=_("The check found errors; fix the list first."), status=422)
    try:
        start_build(rnd, request.form.get("pdf") == "1" and _soffice(), g.who)
    except Busy:
        return round_page.__wrapped__(rid, error=_("This round is being built; please wait."), status=409)
    return redirect(url_for("console_round.round_page", rid=rid) + "#build")


@bp.post("/staff/rounds/<rid>/reprint")
@staff_page
def reprint(rid: str):
    rnd = round_or_404(rid)
    if not rnd.get("batch_id") or rnd.get("purged"):
        abort(404)
    try:
        count = roundwork.reprint(ledger(), rnd["id"], folder(rnd["id"]), g.who, lambda *a: None)
    except LetterpressError as exc:
        return round_page.__wrapped__(rid, error=exc.message, status=400)
    return round_page.__wrapped__(rid, notice=_("%(n)s households have new codes.", n=count))


@bp.post("/staff/rounds/<rid>/purge")
@staff_page
def purge(rid: str):
    rnd = round_or_404(rid)
    if request.form.get("confirm", "").strip() != rnd["title"]:
        return round_page.__wrapped__(rid, error=_("The typed title does not match; nothing was purged."), status=400)
    running = jobs().for_round(rnd["id"], "build")
    if running is not None and running.active:
        return round_page.__wrapped__(rid, error=_("This round is being built; please wait."), status=409)
    roundwork.purge(ledger(), rnd["id"], folder(rnd["id"]), g.who)
    return round_page.__wrapped__(rid, notice=_("Personal data and files are purged."))


def _volunteers(rnd: dict) -> list:
    if not rnd.get("batch_id") or rnd.get("purged"):
        abort(404)
    per = {v["name"]: v["households"] for v in tally(rnd["batch_id"]).by_volunteer()}
    return [{"index": v.index, "name": v.name, "url": v.url, "households": per.get(v.name, 0)}
            for v in ledger().volunteers(rnd["batch_id"])]


@bp.get("/staff/rounds/<rid>/volunteers")
@staff_page
def volunteers_page(rid: str, notice: str = ""):
    rnd = round_or_404(rid)
    return page("console/volunteers.html", r=rnd, tab="volunteers", vols=_volunteers(rnd),
                notice=notice)


@bp.get("/staff/rounds/<rid>/badges")
@staff_page
def badges_sheet(rid: str):
    rnd = round_or_404(rid)
    return page("console/badges.html", r=rnd, vols=_volunteers(rnd))


@bp.get("/staff/rounds/<rid>/badge/<int:idx>.png")
@staff_page
def badge_png(rid: str, idx: int):
    from letterpress.slips import qr

    rnd = round_or_404(rid)
    found = [v for v in _volunteers(rnd) if v["index"] == idx]
    if not found:
        abort(404)
    return send_file(io.BytesIO(qr.png(found[0]["url"].upper(), 360)), mimetype="image/png",
                     max_age=0)


@bp.post("/staff/rounds/<rid>/volunteers/revoke")
@staff_page
def revoke(rid: str):
    rnd = round_or_404(rid)
    name = request.form.get("name", "")
    try:
        ledger().revoke_volunteer(rnd["batch_id"], name)
    except LedgerError:
        abort(404)
    accounts.log_action(ledger(), g.who, "reissue_badge", rnd["title"], name)
    return volunteers_page.__wrapped__(rid, notice=_("The old badge of %(name)s no longer works; print the new one.", name=name or "-"))
