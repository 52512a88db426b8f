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
400   ``bad_outcome``, ``note_required``, ``bad_request`` (not JSON, JSON nested too
      deeply, a field missing or of the wrong type), ``bad_text`` (a
      NUL character or a lone surrogate), ``bad_nonce`` (too long, or already used
      for another code)
413   ``request_entity_too_large``: a body over 64 KiB
429   ``too_many_attempts`` (anonymous clients only), with ``Retry-After``
====  ======================================================================

``GET /api/batches/{id}/status`` with ``Authorization: Bearer {staff API
token}`` (see :mod:`letterpress.server.auth`; the staff session cookie works
too) returns the batch's entry of ``letterpress status --json`` plus its
``id``: 200, 401, 404 ``unknown_batch``.

Errors are ``{"error": code, "message": text}``.

A volunteer's well-formed event post is answered ahead of Flask by
:mod:`letterpress.server.fastpath` (the same answer, at a fraction of the
cost); anything else about it comes to :func:`post_event`.
"""
from __future__ import annotations

import datetime as _dt
import json

from flask import Blueprint, current_app, jsonify, request

from letterpress.errors import BadgeRefused, LedgerError
from letterpress.ledger import codes as codes_mod
from letterpress.server import auth

bp = Blueprint("api", __name__, url_prefix="/api")

_STATUS = {"unknown_code": 404, "revoked_code": 404, "not_authorised": 403, "withdrawn": 410,
           "bad_outcome": 400, "note_required": 400, "bad_nonce": 400, "bad_text": 400}
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


_NO_BADGE = "send the volunteer's badge token as Authorization: Bearer TOKEN"


#: Longest text accepted in a field of an event post (a note is cut to 2000 on the web form).
MAX_FIELD = 4000


def bad_text(value: str) -> str:
    """Why ``value`` cannot be stored as text ("" when it can): NUL characters and lone
    surrogates are refused by PostgreSQL and by UTF-8."""
    if "\x00" in value:
        return "holds a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (not a character)"
    return ""


def parse_body(data: bytes):
    """The JSON of a request body, or ``(None, problem)`` for one that is not JSON
    (deeply nested JSON too, which would exhaust the parser's stack)."""
    try:
        return json.loads(data), None
    except RecursionError:
        return None, (400, "bad_request", "the body is JSON nested too deeply")
    except ValueError:
        return None, (400, "bad_request", "the body is not JSON")


def _event_fields(body):
    """``(fields, None)`` from a request body, or ``(None, (status, code, message))``."""
    if not isinstance(body, dict):
        return None, (400, "bad_request", "the body must be a JSON object")
    fields = {}
    for name, required in (("code", True), ("outcome", True), ("nonce", True),
                           ("note", False), ("at", False)):
        value = body.get(name)
        if value is None and not required:
            continue
        if not isinstance(value, str) or (required and not value.strip()):
            return None, (400, "bad_request", f"{name!r} must be a non-empty text")
        if len(value) > MAX_FIELD:
            return None, (400, "bad_request", f"{name!r} is longer than {MAX_FIELD} characters")
        why = bad_text(value)
        if why:
            return None, (400, "bad_text", f"{name!r} {why}")
        fields[name] = value
    try:
        fields["at"] = _parse_at(fields.get("at"))
    except ValueError as exc:
        return None, (400, "bad_request", f"bad 'at': {exc}")
    return fields, None


def record_event(ledger, token: str, fields: dict):
    """Record a well-formed event post of the volunteer whose badge is ``token``.

    Returns ``(HTTP status, JSON body)`` (201, 200, 409 and the refusals of
    :data:`_STATUS`), or None when the badge is refused: the caller answers 401
    (or 429) and counts the failure. Other ledger errors are raised. Shared by
    the Flask view and the light path of :mod:`letterpress.server.fastpath`.
    """
    try:
        # Who asks is checked in a read transaction first: a stranger's token never opens
        # a write transaction (the one that records checks the badge again).
        ledger.authenticate(token)
        res = ledger.record(fields["code"], fields["outcome"], None, at=fields["at"],
                            nonce=fields["nonce"], note=fields.get("note", ""), source="api",
                            badge=token)
    except BadgeRefused:
        return None
    except LedgerError as exc:
        status = _STATUS.get(exc.code)
        if status is None:
            raise
        return status, {"error": exc.code, "message": exc.message}
    if res.status == "repeated" and res.event.code != codes_mod.printed(fields["code"]):
        return 400, {"error": "bad_nonce", "message": "this nonce was already used for another "
                     "code; send a new unique nonce with every event"}
    payload = {"status": res.status, "event": _event_json(res.event),
               "household": _household_json(res.household)}
    if res.status == "already_delivered":
        hv = res.household
        return 409, {"error": "already_delivered",
                     "message": f"already delivered at {_iso(hv.last_at)} by {hv.last_by}; "
                                "this event was recorded and flagged for review", **payload}
    return (201 if res.status == "created" else 200), payload


@bp.post("/events")
def post_event():
    # The badge is checked inside the transaction that records (one transaction a post);
    # a bad request is answered only once the badge is known good, so a stranger
    # always gets 401 (and is counted) first.
    token = auth.bearer_token()
    if not token or len(token) > auth.MAX_TOKEN:
        return _refused(_NO_BADGE)
    if request.is_json:
        body, problem = parse_body(request.get_data(cache=True))
    else:
        body, problem = None, (400, "bad_request", "send the body as application/json")
    if problem is None:
        fields, problem = _event_fields(body)
    if problem is not None:
        if auth.check_badge(token) is None:
            return _refused(_NO_BADGE)
        return error(*problem)
    answer = record_event(_ledger(), token, fields)
    if answer is None:
        return _refused(_NO_BADGE)
    status, body = answer
    return jsonify(body), status


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
