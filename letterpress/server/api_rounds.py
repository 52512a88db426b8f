"""The JSON API of the staff console: rounds, their builds, files, reprint and purge.

Auth: ``Authorization: Bearer TOKEN`` (``letterpress staff token``) or a staff
session (then ``X-CSRF-Token`` on every change). Without it: 401 JSON. Every
error is ``{"error": CODE, "message": ..., "problems": [...]}``.
"""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, jsonify, request

from letterpress.errors import LetterpressError
from letterpress.i18n import _
from letterpress.ledger import rounds
from letterpress.server import roundwork
from letterpress.server.accounts import csrf_header_ok, current_staff
from letterpress.server.console_ops import (
    BUILD_STAGES,
    create_round,
    folder,
    jobs,
    ledger,
    replace_recipients,
    round_json,
    start_build,
    upload_cap,
)
from letterpress.server.files import download
from letterpress.server.jobs import Busy
from letterpress.server.uploads import TooLarge

bp = Blueprint("api_rounds", __name__)


def api_error(status: int, code: str, message: str, problems=()):
    return jsonify(error=code, message=message, problems=list(problems)), status


def staff_api(view):
    """401 JSON without staff auth; 403 JSON for a cookie change without its CSRF header."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_staff() is None:
            return api_error(401, "not_authorised", _("staff sign-in or a staff token is "
                                                      "needed (Authorization: Bearer TOKEN "
                                                      "from `letterpress staff token`)"))
        if (request.method != "GET" and not request.headers.get("Authorization")
                and not csrf_header_ok()):
            return api_error(403, "csrf", _("send the X-CSRF-Token header of the session"))
        return view(*args, **kwargs)
    return wrapped


def _round_or_404(rid: str):
    rnd = rounds.find(ledger(), rid)
    if rnd is None:
        return None, api_error(404, "unknown_round", _("there is no round %(rid)s", rid=rid))
    return rnd, None


def _upload_error(exc: LetterpressError):
    status = 413 if isinstance(exc, TooLarge) else 400
    return api_error(status, exc.code, exc.message, [roundwork.error_problem(exc)])


def _check_body(rnd: dict) -> dict:
    found = rnd.get("check") or {}
    return {"id": rnd["id"], "title": rnd["title"],
            "households": found.get("summary", {}).get("households", 0),
            "problems": found.get("problems", []), "can_build": bool(found.get("can_build"))}


@bp.post("/api/rounds")
@staff_api
def create():
    request.max_content_length = upload_cap()
    try:
        rnd = create_round(request.form, request.files, current_staff() or "")
    except LetterpressError as exc:
        if exc.code == "round_exists":
            return api_error(409, exc.code, exc.message)
        return _upload_error(exc)
    return jsonify(_check_body(rnd)), 201


@bp.put("/api/rounds/<rid>/recipients")
@staff_api
def recipients(rid: str):
    rnd, err = _round_or_404(rid)
    if err:
        return err
    if rnd.get("purged"):
        return api_error(409, "purged", _("this round was purged"))
    request.max_content_length = upload_cap()
    try:
        rnd = replace_recipients(rnd, request.files, current_staff() or "")
    except LetterpressError as exc:
        return _upload_error(exc)
    return jsonify(_check_body(rnd)), 200


@bp.post("/api/rounds/<rid>/build")
@staff_api
def build(rid: str):
    rnd, err = _round_or_404(rid)
    if err:
        return err
    body = request.get_json(silent=True) or {}
    found = rnd.get("check") or {}
    if rnd.get("purged") or not found:
        return api_error(422, "not_checked", _("upload the recipient list first"))
    if not found.get("can_build"):
        return api_error(422, "check_failed",
                         _("the check found errors; fix the list and upload it again"),
                         [p for p in found.get("problems", []) if p["severity"] == "error"])
    try:
        job = start_build(rnd, bool(body.get("pdf")), current_staff() or "")
    except Busy as exc:
        return api_error(409, "build_running", _("a build of this round is %(state)s",
                                                 state=exc.job.state),
                         [])
    return jsonify(job=job.id), 202


@bp.get("/api/jobs/<job_id>")
@staff_api
def job(job_id: str):
    found = jobs().get(job_id)
    if found is None:
        return api_error(404, "unknown_job", _("there is no job %(job_id)s", job_id=job_id))
    body = found.as_json()
    body["stages"] = BUILD_STAGES
    return jsonify(body)


@bp.get("/api/rounds")
@staff_api
def list_rounds():
    return jsonify(rounds=[round_json(r, brief=True) for r in rounds.all_rounds(ledger())])


@bp.get("/api/rounds/<rid>")
@staff_api
def show(rid: str):
    rnd, err = _round_or_404(rid)
    if err:
        return err
    return jsonify(round_json(rnd))


@bp.get("/api/rounds/<rid>/files/<path:name>")
@staff_api
def file(rid: str, name: str):
    rnd, err = _round_or_404(rid)
    if err:
        return err
    path = roundwork.file_path(rnd, folder(rnd["id"]), name)
    if path is None:
        return api_error(404, "unknown_file", _("round %(rid)s has no file %(name)s",
                                                rid=rid, name=name))
    return download(rnd, path, name)


@bp.post("/api/rounds/<rid>/reprint")
@staff_api
def reprint(rid: str):
    rnd, err = _round_or_404(rid)
    if err:
        return err
    body = request.get_json(silent=True) or {}
    if body.get("outstanding") is not True:
        return api_error(400, "bad_request", _("send {\"outstanding\": true}"))
    if not rnd.get("batch_id") or rnd.get("purged"):
        return api_error(409, "not_built", _("build the round first"))
    running = jobs().for_round(rnd["id"])
    if running is not None and running.active:
        return api_error(409, "build_running", _("a build of this round is running"))
    try:
        count = roundwork.reprint(ledger(), rnd["id"], folder(rnd["id"]), current_staff() or "",
                                  lambda *a: None)
    except LetterpressError as exc:
        return api_error(400, exc.code, exc.message, [roundwork.error_problem(exc)])
    body = round_json(rounds.get(ledger(), rnd["id"]))
    return jsonify(reprinted=count, counts=body["counts"], files=body["files"])


@bp.delete("/api/rounds/<rid>")
@staff_api
def purge(rid: str):
    rnd, err = _round_or_404(rid)
    if err:
        return err
    body = request.get_json(silent=True) or {}
    if body.get("confirm") != rnd["title"]:
        return api_error(400, "confirm_mismatch", _("send {\"confirm\": TITLE} with the "
                                                    "round's exact title to purge it"))
    running = jobs().for_round(rnd["id"])
    if running is not None and running.active:
        return api_error(409, "build_running", _("wait for the build to finish"))
    roundwork.purge(ledger(), rnd["id"], folder(rnd["id"]), current_staff() or "")
    return jsonify(round_json(rounds.get(ledger(), rnd["id"])))
