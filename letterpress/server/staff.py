"""Staff pages: the one-time staff login link, the dashboard, undo with a reason."""
from __future__ import annotations

from typing import List

from flask import (
    Blueprint,
    current_app,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)

from letterpress.errors import LedgerError
from letterpress.i18n import _
from letterpress.ledger import accounts, livetally
from letterpress.server import auth, i18n, message_page
from letterpress.server.accounts import current_staff
from letterpress.server.present import bar_widths, local_time

bp = Blueprint("staff", __name__)

#: Rows shown per household list on the dashboard (the report has them all).
MAX_ROWS = 100
#: Recent events shown with an undo form, per batch.
MAX_EVENTS = 60


def _state():
    return current_app.extensions["letterpress"]



@bp.get("/s/<token>")
@bp.get("/S/<token>")
def staff_login(token: str):
    try:
        if len(token) > auth.MAX_TOKEN:
            raise LedgerError(_("token too long"), code="not_authorised")
        _state().ledger.use_staff_token(token)
    except LedgerError as exc:
        if exc.code != "not_authorised":
            raise
        waited = auth.blocked()
        auth.count_failure()
        if waited:
            return message_page(429, "too_many", retry_after=waited,
                                minutes=max(1, (waited + 59) // 60))
        return message_page(401, "bad_staff")
    auth.log_in_staff()
    return redirect(url_for("staff.dashboard"))


def _bar(name: str, counts: dict) -> dict:
    d, f, o = bar_widths(counts["delivered"], counts["failed"], counts["outstanding"])
    return dict(counts, name=name, wd=d, wf=f, wo=o)


def _events(batch_id: int) -> List:
    """Recent outcome events of a batch, newest first, and every flagged duplicate."""
    with _state().ledger.transaction() as conn:
        evs = livetally.recent_events(conn, batch_id)
    return [e for e in evs if e.kind == "outcome"]


def _event_row(ev, by_id) -> dict:
    hv = by_id.get(ev.household_id)
    return {"id": ev.id, "seq": hv.seq if hv else "", "name": hv.name if hv else "",
            "outcome": i18n.label("history", ev.outcome), "when": local_time(ev.at),
            "by": ev.volunteer or _("unassigned"), "note": ev.note, "undone": ev.undone,
            "duplicate": ev.duplicate}


def _household_row(hv) -> dict:
    return {"seq": hv.seq, "name": hv.name, "honorific": hv.honorific, "address": hv.address,
            "phone": hv.phone, "volunteer": hv.volunteer or _("unassigned"),
            "last": i18n.label("history", hv.last_outcome) if hv.last_outcome else "",
            "when": local_time(hv.last_at), "by": hv.last_by, "note": hv.last_note,
            "notes": hv.notes}


def _batch_view(batch) -> dict:
    """One batch on the dashboard: counts from the batch's live tally
    (:mod:`letterpress.ledger.livetally`, loaded once, then only new events read), and
    only the households shown."""
    ledger = _state().ledger
    live = current_app.extensions["letterpress_tallies"].of(ledger, batch.id)
    entry = dict(live.counts(), title=batch.title,
                 date=batch.date.isoformat() if batch.date else None)
    events = _events(batch.id)
    shown = [e for e in events if e.duplicate and not e.undone] + events[:MAX_EVENTS]
    by_id = {r.id: r for r in ledger.households_by_id([e.household_id for e in shown])}
    failed = ledger.households_by_id(live.ids("failed", 0, MAX_ROWS))
    outstanding = ledger.households_by_id(live.ids("outstanding", 0, MAX_ROWS))
    volunteers, compounds = live.by_volunteer(), live.by_compound()
    return {
        "id": batch.id, "title": batch.title, "date": entry["date"], "entry": entry,
        "total": _bar("", entry),
        "volunteers": [_bar(v["name"] or _("unassigned"), v) for v in volunteers[:MAX_ROWS]],
        "volunteers_more": max(0, len(volunteers) - MAX_ROWS),
        "compounds": [_bar(c["name"].strip() or _("(no compound)"), c)
                      for c in compounds[:MAX_ROWS]],
        "compounds_more": max(0, len(compounds) - MAX_ROWS),
        "failed": [_household_row(r) for r in failed],
        "failed_more": max(0, entry["failed"] - len(failed)),
        "outstanding": [_household_row(r) for r in outstanding],
        "outstanding_more": max(0, entry["outstanding"] - len(outstanding)),
        "duplicates": [_event_row(e, by_id) for e in events if e.duplicate and not e.undone],
        "events": [_event_row(e, by_id) for e in events[:MAX_EVENTS]],
    }


@bp.get("/dashboard")
def dashboard():
    if current_staff() is None:
        return message_page(403, "staff_only")
    state = _state()
    batches = [_batch_view(b) for b in state.ledger.batches()]
    return render_template("dashboard.html", batches=batches,
                           refresh=request.args.get("refresh") != "0",
                           api_token=auth.staff_api_token(state.secret),
                           banners=get_flashed_messages(with_categories=True))


@bp.post("/dashboard/undo")
def undo():
    if current_staff() is None:
        return message_page(403, "staff_only")
    if not auth.csrf_ok():
        return message_page(400, "csrf")
    try:
        event_id = int(request.form.get("event_id", ""))
    except ValueError:
        return message_page(400, "bad_request")
    reason = request.form.get("reason", "").strip()[:500]
    if not reason:
        flash(_("An undo needs a reason."), "error")
    else:
        try:
            who = current_staff() or "staff"
            _state().ledger.undo(event_id, reason, by=who, source="web")
            accounts.log_action(_state().ledger, who, "undo", detail=f"event {event_id}: {reason}")
        except LedgerError as exc:
            if exc.code not in ("unknown_event", "cannot_undo", "already_undone",
                                "reason_required"):
                raise
            flash(_("Cannot undo: %(message)s", message=exc.message), "error")
        else:
            flash(_("Record %(id)s was undone.", id=event_id), "ok")
    paused = {"refresh": 0} if request.form.get("refresh") == "0" else {}
    return redirect(url_for("staff.dashboard", **paused))
