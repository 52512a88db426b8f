"""The JSON API for scanner apps and scripts (bearer tokens, no cookies, no CSRF).

``POST /api/events`` with ``Authorization: Bearer {badge token}`` and a JSON
body ``{"code", "outcome", "nonce", "at"?, "note"?}``:

====  ======================================================================
201   a new event: ``{"status": "created", "event": {...}, "household": {...}}``
200   the nonce was seen before: nothing new, the first event is returned
409   ``already_delivered``: recorded and flagged for review (the body also
      has ``event`` and ``household``, whose ``delivered_at``/``delivered_by``
      say who delivered first)
404   ``unknown_code`` (also malformed codes) or ``revoked_code``
401   ``not_authorised``: no bearer token, or an unknown or revoked one
403   ``not_authorised``: the token is valid but the code is of another batch
410   ``withdrawn``: the household was taken off the batch's list
400   ``bad_outcome``, ``note_required``, ``bad_request``, ``bad_nonce`` (too long,
      or already used for another code)
429   ``too_many_attempts`` (anonymous clients only), with ``Retry-After``
====  ======================================================================

``GET /api/batches/{id}/status`` with ``Authorization: Bearer {staff API
token}`` (see :mod:`letterpress.server.auth`; the staff session cookie works
too) returns the batch's entry of ``letterpress status --json`` plus its
``id``: 200, 401, 404 ``unknown_batch``.

Errors are ``{"error": code, "message": text}``.
"""
from __future__ import annotations

import datetime as _dt

from flask import Blueprint, current_app, jsonify, request

from .. import codes as codes_mod
from ..errors import LedgerError
from . import auth

bp = Blueprint("api", __name__, url_prefix="/api")

_STATUS = {"unknown_code": 404, "revoked_code": 404, "not_authorised": 403, "withdrawn": 410,
           "bad_outcome": 400, "note_required": 400, "bad_nonce": 400}
#: How far in the future an ``at`` may be (phone clocks drift a little).
MAX_FUTURE = _dt.timedelta(hours=1)


def _ledger():
    return current_app.extensions["letterpress"].ledger


def error(http_status: int, code: str, message: str, headers=None, **extra):
    body = {"error": code, "message": message}
    body.update(extra)
    return jsonify(body), http_status, headers or {}


def _refused(message: str):
    """401 for a missing or bad token; 429 once this client has failed too often."""
    waited = auth.blocked()
    auth.count_failure()
    if waited:
        return error(429, "too_many_attempts",
                     f"too many failed attempts; try again in {waited} seconds",
                     {"Retry-After": str(waited)})
    return error(401, "not_authorised", message, {"WWW-Authenticate": "Bearer"})


def _iso(value):
    return value.isoformat() if value is not None else None


def _event_json(ev) -> dict:
    return {"id": ev.id, "code": ev.code, "outcome": ev.outcome, "volunteer": ev.volunteer,
            "at": _iso(ev.at), "recorded_at": _iso(ev.recorded_at), "note": ev.note,
            "duplicate": ev.duplicate, "source": ev.source}


def _household_json(hv) -> dict:
    out = {"seq": hv.seq, "state": hv.state}
    if hv.state == "delivered":
        out.update(delivered_at=_iso(hv.last_at), delivered_by=hv.last_by)
    return out


def _parse_at(value):
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("at must be an ISO 8601 date and time text")
    at = _dt.datetime.fromisoformat(value.strip())
    aware = at if at.tzinfo else at.astimezone()
    if aware - _dt.datetime.now(_dt.timezone.utc) > MAX_FUTURE:
        raise ValueError("at is in the future")
    return at


@bp.post("/events")
def post_event():
    login = auth.check_badge(auth.bearer_token())
    if login is None:
        return _refused("send the volunteer's badge token as Authorization: Bearer TOKEN")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, "bad_request", "the body must be a JSON object")
    fields = {}
    for name, required in (("code", True), ("outcome", True), ("nonce", True),
                           ("note", False), ("at", False)):
        value = body.get(name)
        if value is None and not required:
            continue
        if not isinstance(value, str) or (required and not value.strip()):
            return error(400, "bad_request", f"{name!r} must be a non-empty text")
        fields[name] = value
    try:
        at = _parse_at(fields.get("at"))
    except ValueError as exc:
        return error(400, "bad_request", f"bad 'at': {exc}")
    try:
        res = _ledger().record(fields["code"], fields["outcome"], login.name, at=at,
                               nonce=fields["nonce"], note=fields.get("note", ""),
                               source="api", batch_id=login.batch_id)
    except LedgerError as exc:
        status = _STATUS.get(exc.code)
        if status is None:
            raise
        return error(status, exc.code, exc.message)
    if res.status == "repeated" and res.event.code != codes_mod.printed(fields["code"]):
        return error(400, "bad_nonce", "this nonce was already used for another code; send a "
                     "new unique nonce with every event")
    payload = {"status": res.status, "event": _event_json(res.event),
               "household": _household_json(res.household)}
    if res.status == "already_delivered":
        hv = res.household
        return error(409, "already_delivered",
                     f"already delivered at {_iso(hv.last_at)} by {hv.last_by}; this event "
                     "was recorded and flagged for review", **payload)
    return jsonify(payload), (201 if res.status == "created" else 200)


@bp.get("/batches/<int:batch_id>/status")
def batch_status(batch_id: int):
    state = current_app.extensions["letterpress"]
    if not (auth.is_staff() or auth.check_staff_api_token(state.secret, auth.bearer_token())):
        return _refused("send a staff API token (shown on the dashboard) as "
                        "Authorization: Bearer TOKEN")
    try:
        batch = state.ledger.batch(batch_id)
    except LedgerError as exc:
        if exc.code != "unknown_batch":
            raise
        return error(404, "unknown_batch", exc.message)
    entry = state.ledger.status(batch.title)["batches"][0]
    return jsonify(dict(id=batch.id, **entry))
