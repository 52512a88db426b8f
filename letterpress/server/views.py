"""Volunteer pages: badge login, the round list, the slip page, recording an outcome (HTML,
no JavaScript needed; see :mod:`letterpress.server.round` for what the phone keeps offline)."""
from __future__ import annotations

from typing import Optional

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

from letterpress.choices import DELIVERED_OUTCOMES, OUTCOMES
from letterpress.errors import LedgerError
from letterpress.i18n import _
from letterpress.ledger import codes as codes_mod
from letterpress.server import auth, i18n, message_page
from letterpress.server.present import local_time, mask_name, masked_place, phones
from letterpress.server.round import round_context, sync_texts

bp = Blueprint("pages", __name__)

#: Outcome buttons in the order shown, and the style of each.
#: Delivered outcomes first, in green; the others after them.
BUTTONS = tuple((o, "ok" if o in DELIVERED_OUTCOMES else "fail")
                for o in sorted(OUTCOMES, key=lambda o: o not in DELIVERED_OUTCOMES))


def _ledger():
    return current_app.extensions["letterpress"].ledger



def _too_many(seconds: int):
    return message_page(429, "too_many", retry_after=seconds,
                        minutes=max(1, (seconds + 59) // 60))


def _bad_code(anonymous: bool, revoked: bool = False):
    """404 for an unknown, malformed or revoked code (unknown ones count against strangers)."""
    if anonymous and not revoked:
        auth.count_failure()
    return message_page(404, "revoked_code" if revoked else "unknown_code")


def _batch_title(batch_id: int) -> str:
    try:
        return _ledger().batch(batch_id).title
    except LedgerError:
        return ""


# --- start, badge, home ------------------------------------------------------------------------

@bp.get("/")
def index():
    if auth.session_volunteer() is not None:
        return redirect(url_for("pages.home"))
    return render_template("index.html")


@bp.get("/v/<token>")
@bp.get("/V/<token>")
def badge(token: str):
    login = auth.check_badge(token)
    if login is None:
        waited = auth.blocked()
        auth.count_failure()
        return _too_many(waited) if waited else message_page(401, "bad_badge")
    auth.log_in_volunteer(login)
    return redirect(url_for("pages.home"))


@bp.get("/home")
def home():
    vol = auth.session_volunteer()
    if vol is None:
        return redirect(url_for("pages.index"))
    return render_template("home.html", vol=vol, phone_texts=sync_texts(), **round_context(vol),
                           banners=get_flashed_messages(with_categories=True))


@bp.get("/go")
def go():
    """The form on the home page for a code typed by hand."""
    anonymous = auth.session_volunteer() is None and not auth.is_staff()
    if anonymous:
        waited = auth.blocked()
        if waited:
            return _too_many(waited)
    try:
        canonical = codes_mod.normalise(request.args.get("code", ""))
    except ValueError:
        return _bad_code(anonymous)
    return redirect(url_for("pages.household", code=canonical, via=_via()))


def _via() -> Optional[str]:
    """``list`` when the volunteer came from the round list (the slip was lost), else None."""
    return "list" if (request.values.get("via") == "list") else None


@bp.post("/logout")
def logout():
    if not auth.csrf_ok():
        return message_page(400, "csrf")
    auth.log_out_volunteer()
    auth.log_out_staff()
    flash(_("You are logged out."), "ok")
    return redirect(url_for("pages.index"))


# --- the slip page -----------------------------------------------------------------------------

def _lookup(code: str, anonymous: bool):
    """``(household view, None)`` or ``(None, error response)``."""
    try:
        codes_mod.normalise(code)
    except ValueError:
        return None, _bad_code(anonymous)
    try:
        return _ledger().household_by_code(code), None
    except LedgerError as exc:
        if exc.code in ("unknown_code", "revoked_code"):
            return None, _bad_code(anonymous, revoked=exc.code == "revoked_code")
        raise


def _history(household_id: int):
    """The household's outcome events for the page (undo events mark what they undid)."""
    rows = []
    for ev in _ledger().events_for(household_id):
        if ev.kind != "outcome":
            continue
        rows.append({"text": _("%(what)s %(time)s by %(name)s",
                               what=i18n.label("history", ev.outcome), time=local_time(ev.at),
                                name=ev.volunteer or _("unassigned")),
                     "note": ev.note, "undone": ev.undone, "duplicate": ev.duplicate,
                     "delivered": ev.outcome in ("delivered", "proxy")})
    return rows


def _masked(hv, vol: Optional[auth.VolunteerLogin], status: int = 200):
    other = _batch_title(hv.batch_id) if vol is not None else ""
    return render_template("masked.html", name=mask_name(hv.name),
                           place=masked_place(hv.compound, hv.building), other_batch=other,
                           vol=vol), status


def _guarded_lookup(code: str, anonymous: bool):
    """:func:`_lookup`, refused at once (429) for an anonymous client that guessed too often."""
    if anonymous:
        waited = auth.blocked()
        if waited:
            return None, _too_many(waited)
    return _lookup(code, anonymous)


@bp.get("/h/<code>")
@bp.get("/H/<code>")
def household(code: str):
    vol = auth.session_volunteer()
    hv, error = _guarded_lookup(code, anonymous=vol is None and not auth.is_staff())
    if error is not None:
        return error
    if vol is None or vol.batch_id != hv.batch_id:
        return _masked(hv, vol)
    return render_template(
        "household.html", hv=hv, vol=vol, code=codes_mod.printed(code),
        path_code=codes_mod.normalise(code), buttons=BUTTONS,
        history=_history(hv.id), nonce=auth.new_nonce(), phones=phones(hv.phone), via=_via(),
        phone_texts=sync_texts(),
        delivered_at=local_time(hv.last_at) if hv.state == "delivered" else "",
        banners=get_flashed_messages(with_categories=True))


@bp.post("/h/<code>")
@bp.post("/H/<code>")
def household_record(code: str):
    vol = auth.session_volunteer()
    if vol is None:
        _found, error = _guarded_lookup(code, anonymous=not auth.is_staff())
        return error if error is not None else message_page(403, "not_logged_in")
    if not auth.csrf_ok():
        return message_page(400, "csrf")
    outcome = request.form.get("outcome", "")
    try:
        res = _ledger().record(code, outcome, vol.name, nonce=request.form.get("nonce") or None,
                               note=request.form.get("note", "")[:2000], source=_via() or "web",
                               batch_id=vol.batch_id)
    except LedgerError as exc:
        if exc.code in ("unknown_code", "revoked_code"):
            return _bad_code(False, revoked=exc.code == "revoked_code")
        if exc.code == "not_authorised":
            hv, error = _lookup(code, False)
            return error if error is not None else _masked(hv, vol, 403)
        if exc.code == "note_required":
            flash(i18n.note_needed(outcome), "error")
        elif exc.code == "bad_outcome":
            flash(_("Please choose an outcome."), "error")
        elif exc.code == "withdrawn":
            flash(_("This household was taken off this round's list: no delivery. Ask staff."), "error")
        elif exc.code == "bad_nonce":
            flash(_("This page expired; please tap again."), "error")
        elif exc.code == "bad_text":
            flash(_("The request could not be handled."), "error")
        else:
            raise
        return redirect(url_for("pages.household", code=codes_mod.normalise(code), via=_via()))
    what = i18n.label("outcome", res.event.outcome)
    if res.status == "already_delivered":
        hv = res.household
        flash(_("Already delivered at %(time)s by %(name)s. This record was kept for staff review.", time=local_time(hv.last_at),
                 name=hv.last_by or _("unassigned")), "warn")
    elif res.status == "repeated":
        flash(_("Recorded: %(what)s (sent twice, recorded once).", what=what), "ok")
    else:
        flash(_("Recorded: %(what)s.", what=what), "ok")
    if _via():      # from the round list: back to it, where the next household is
        return redirect(url_for("pages.home"))
    return redirect(url_for("pages.household", code=codes_mod.normalise(code)))

