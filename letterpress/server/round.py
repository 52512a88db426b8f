"""The volunteer's round on the phone: the list on ``/home``, and what the phone needs offline.

``/home`` lists the logged-in volunteer's own households in walking order
(outstanding and failed first, a "next" button, delivered ones folded away);
tapping a row opens the household's page with ``?via=list``, and an outcome
recorded from there is kept with the source ``list`` (the slip was lost or
would not scan). Works without JavaScript.

Where the browser allows service workers (https, or localhost), the pages
also load ``/static/round.js``, which registers ``/sw.js`` (served from the
app, under the CSP ``script-src 'self'``). The worker keeps this volunteer's
round for offline use and queues outcomes recorded without a connection,
sending them here later:

===========================  ==========================================================
``GET /home/round.json``     the pages to keep on the phone: ``{"key", "urls"}``; 401
``POST /home/sync``          queued outcomes ``{"events": [{code, outcome, nonce, note,
                             at, via, key}]}`` with the header ``X-CSRF-Token`` (``key``:
                             the round's key when it was queued): 200 with a
                             result per event, 401 (not logged in or badge revoked: the
                             phone drops its copy), 400 bad CSRF or body
``GET /offline``             the page shown offline for a page the phone does not keep
``GET /sw.js``               the service worker (scope ``/``)
===========================  ==========================================================
"""
from __future__ import annotations

import hmac
from typing import Dict, List, Optional

from flask import (
    Blueprint,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)

from letterpress.choices import OUTCOMES
from letterpress.errors import LedgerError
from letterpress.i18n import _
from letterpress.ledger import codes as codes_mod
from letterpress.server import auth, i18n
from letterpress.server.api import _event_fields
from letterpress.server.present import local_time, phones

bp = Blueprint("round", __name__)

#: Most events one sync may carry (a phone sends its queue in batches of this size).
MAX_SYNC = 50


def _ledger():
    return current_app.extensions["letterpress"].ledger



def _row(hv, words: Dict[str, str]) -> dict:
    """What the list shows of one household (``words``: this page's labels, looked up once)."""
    last = ""
    if hv.state == "failed" and hv.last_outcome:
        last = words.get("history." + hv.last_outcome, hv.last_outcome) + " " + \
            local_time(hv.last_at)
    elif hv.state == "delivered":
        last = local_time(hv.last_at)
    path = codes_mod.normalise(hv.code) if hv.code else ""
    label = words.get("state." + hv.state, hv.state)
    return {"seq": hv.seq, "name": hv.name, "honorific": hv.honorific, "address": hv.address,
            "state": hv.state, "label": f"{label} · {last}" if last.strip() else label,
            "notes": _("At the door: %(notes)s", notes=hv.notes) if hv.notes else "",
            "phones": [(_("Call %(phone)s", phone=shown), dial) for shown, dial in phones(hv.phone)],
            "path": path, "href": f"/H/{path}?via=list" if path else ""}


def round_context(vol: auth.VolunteerLogin) -> dict:
    """Template values of the round list for ``vol`` (one transaction: batch and households)."""
    try:
        batch, households = _ledger().round_page(vol.batch_id, vol.name)
    except LedgerError as exc:
        if exc.code != "unknown_batch":
            raise
        batch, households = None, []
    words = {f"state.{s}": i18n.label("state", s)
             for s in ("outstanding", "delivered", "failed", "withdrawn")}
    words.update({f"history.{o}": i18n.label("history", o) for o in OUTCOMES})
    todo: List[dict] = []
    done: List[dict] = []
    for hv in households:
        (done if hv.state == "delivered" else todo).append(_row(hv, words))
    # Outstanding first (walking order), then the failed ones to visit again.
    todo.sort(key=lambda r: (r["state"] != "outstanding", r["seq"]))
    counts = {"households": len(households), "delivered": len(done),
              "failed": sum(r["state"] == "failed" for r in todo),
              "outstanding": sum(r["state"] == "outstanding" for r in todo)}
    upcoming = next((r for r in todo if r["path"]), None)
    return {"title": batch.title if batch else "", "todo": todo, "done": done,
            "counts": counts, "next": upcoming}


def round_urls(vol: auth.VolunteerLogin) -> List[str]:
    """The pages the phone keeps for ``vol``: the list, the offline page and each slip page."""
    urls = [url_for("pages.home"), url_for("round.offline")]
    for hv in _ledger().round(vol.batch_id, vol.name):
        if hv.code:
            urls.append(url_for("pages.household", code=codes_mod.normalise(hv.code)))
    return urls


def _not_logged_in():
    return jsonify(error="not_authorised", message="log in with the volunteer badge"), 401


@bp.get("/home/round.json")
def round_json():
    vol = auth.session_volunteer()
    if vol is None:
        return _not_logged_in()
    return jsonify(key=_badge_key(vol), urls=round_urls(vol))


def _badge_key(vol: auth.VolunteerLogin) -> str:
    """What names the phone's copy of this badge's round (a digest of the token, not the token)."""
    return vol.key.partition(":")[2]


def _csrf_header_ok() -> bool:
    sent = request.headers.get("X-CSRF-Token", "")
    expected = session.get("csrf")
    return bool(sent) and isinstance(expected, str) and hmac.compare_digest(
        sent.encode(), expected.encode())


def _sync_one(vol: auth.VolunteerLogin, item) -> Dict[str, object]:
    """Record one queued event; the answer the phone shows (status and a sentence)."""
    fields, problem = _event_fields(item)
    nonce = item.get("nonce") if isinstance(item, dict) else None
    if problem is not None:
        return {"nonce": nonce, "status": "error", "error": problem[1],
                "message": _("A record could not be sent (%(what)s).", what=problem[2])}
    key = item.get("key")
    if key and key != _badge_key(vol):
        # Queued under another badge on this phone (logged in again without logging out):
        # never recorded under this volunteer's name.
        return {"nonce": nonce, "status": "error", "error": "other_badge",
                "message": _("A record saved on this phone under another volunteer's login was "
                             "not sent; tell staff what it was.")}
    source = "list" if item.get("via") == "list" else "web"
    try:
        res = _ledger().record(fields["code"], fields["outcome"], vol.name, at=fields["at"],
                               nonce=fields["nonce"], note=fields.get("note", "")[:2000],
                               source=source, batch_id=vol.batch_id)
    except LedgerError as exc:
        if exc.code in ("ledger_busy", "ledger_unreachable"):
            raise
        return {"nonce": nonce, "status": "error", "error": exc.code,
                "message": i18n.label("sync_refused", exc.code, code=fields["code"])
                if exc.code in ("revoked_code", "withdrawn", "not_authorised", "note_required")
                else _("The record for code %(code)s was not accepted; tell staff.",
                       code=fields["code"])}
    hv = res.household
    out: Dict[str, object] = {"nonce": nonce, "status": res.status, "seq": hv.seq,
                              "state": hv.state}
    what = i18n.label("outcome", res.event.outcome)
    if res.status == "already_delivered":
        out["message"] = _("No. %(seq)s was already delivered at %(time)s by %(name)s. Your record (%(what)s) was kept for staff review.", seq=hv.seq, what=what, time=local_time(hv.last_at),
                            name=hv.last_by or _("unassigned"))
    else:
        out["message"] = _("No. %(seq)s: %(what)s, sent.", seq=hv.seq, what=what)
    return out


@bp.post("/home/sync")
def sync():
    vol = auth.session_volunteer()
    if vol is None:
        return _not_logged_in()
    if not _csrf_header_ok():
        return jsonify(error="csrf", message="send the page's CSRF token as X-CSRF-Token"), 400
    body = request.get_json(silent=True)
    items = body.get("events") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) > MAX_SYNC:
        return jsonify(error="bad_request",
                       message=f"send {{\"events\": [...]}} with at most {MAX_SYNC} events"), 400
    return jsonify(results=[_sync_one(vol, item) for item in items])


@bp.get("/offline")
def offline():
    return render_template("offline.html", vol=auth.session_volunteer())


@bp.get("/sw.js")
def service_worker():
    response = send_from_directory(current_app.static_folder or "static", "sw.js",
                                   mimetype="text/javascript", max_age=0)
    response.headers["Service-Worker-Allowed"] = "/"
    return response


def sync_texts() -> Optional[dict]:
    """The sentences ``round.js`` shows, for the page's ``data-`` attributes."""
    keys = ("waiting", "sent", "saved_copy", "revoked", "offline_now", "sending",
            "logout_waiting", "queued_here")
    return {k: i18n.label("phone", k, n="{n}", what="{what}") for k in keys}
