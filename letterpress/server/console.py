"""The staff console's pages, part one: rounds list, new round, check page, previews.

Works without JavaScript; pages answer sign-in redirects, forms carry CSRF.
The same operations as the JSON API (:mod:`letterpress.server.console_ops`).
"""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, g, redirect, render_template, request, send_file, url_for

from letterpress.choices import DEFAULT_LAYOUT, LAYOUTS
from letterpress.errors import LetterpressError
from letterpress.i18n import _
from letterpress.ledger import rounds
from letterpress.resources import BUILTIN_TEMPLATES
from letterpress.server import auth, message_page
from letterpress.server.accounts import current_staff, sign_in_redirect
from letterpress.server.console_ops import (
    create_round,
    folder,
    jobs,
    ledger,
    replace_recipients,
    round_json,
    upload_cap,
)
from letterpress.server.files import CONTENT_TYPES
from letterpress.server.uploads import TooLarge

bp = Blueprint("console", __name__)

#: Preview files a page may show.
PREVIEWS = ("letter.png", "slips.png", "slips.pdf")


def staff_page(view):
    """Sign-in redirect without staff; CSRF on every POST; ``g.who`` is the staff name."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        who = current_staff()
        if who is None:
            return sign_in_redirect()
        if request.method == "POST" and not auth.csrf_ok():
            return message_page(400, "csrf")
        g.who = who
        return view(*args, **kwargs)
    return wrapped


def page(template: str, status: int = 200, **values):
    return render_template(template, who=g.who, **values), status


def round_or_404(rid: str) -> dict:
    rnd = rounds.find(ledger(), rid)
    if rnd is None:
        abort(404)
    return rnd


def upload_error(exc: LetterpressError) -> str:
    text = exc.message + (f" ({exc.hint})" if exc.hint else "")
    return _("The upload cannot be used: %(message)s", message=text)


@bp.get("/staff")
@staff_page
def rounds_page():
    listed = []
    for rnd in rounds.all_rounds(ledger()):
        listed.append(dict(round_json(rnd, brief=True), date=rnd.get("date", "")))
    return page("console/rounds.html", rounds=listed)


def _new_form(values, error: str = "", status: int = 200):
    from letterpress import network
    from letterpress.server.console_ops import _limit

    port = request.host.rsplit(":", 1)[1] if ":" in request.host else ""
    base = network.default_base_url(int(port)) if port.isdigit() else network.default_base_url()
    form = {"title": "", "org": "", "date": "", "package": "", "layout": DEFAULT_LAYOUT,
            "lang": g.lang, "template_name": g.lang, "base_url": base}
    form.update({k: v for k, v in values.items() if k in form})
    return page("console/new.html", status, form=form, error=error, layouts=LAYOUTS,
                templates=list(BUILTIN_TEMPLATES), limit_mb=_limit() // (1024 * 1024))


@bp.route("/staff/new", methods=["GET", "POST"])
@staff_page
def new_round():
    if request.method == "GET":
        return _new_form({})
    request.max_content_length = upload_cap()
    try:
        rnd = create_round(request.form, request.files, g.who)
    except TooLarge as exc:
        return _new_form(request.form, upload_error(exc), 413)
    except LetterpressError as exc:
        if exc.code == "round_exists":
            return _new_form(request.form, _("A round with this title exists; choose another title."), 409)
        return _new_form(request.form, upload_error(exc), 400)
    return redirect(url_for("console.check_page", rid=rnd["id"]))


@bp.get("/staff/rounds/<rid>/check")
@staff_page
def check_page(rid: str, error: str = "", notice: str = "", status: int = 200):
    rnd = round_or_404(rid)
    found = rnd.get("check") or {}
    problems = found.get("problems", [])
    pdir = folder(rnd["id"]) / "preview"
    text_file = pdir / "letter.txt"
    job = jobs().for_round(rnd["id"], "preview")
    return page("console/check.html", status, r=rnd, tab="check", s=found.get("summary", {}),
                problems=problems, error=error, notice=notice,
                errors=[p for p in problems if p["severity"] == "error"],
                warnings=[p for p in problems if p["severity"] != "error"],
                can_build=bool(found.get("can_build")),
                has={"letter_png": (pdir / "letter.png").is_file(),
                     "slips_png": (pdir / "slips.png").is_file(),
                     "slips_pdf": (pdir / "slips.pdf").is_file()},
                letter_text=text_file.read_text(encoding="utf-8") if text_file.is_file() else "",
                preview_pending=bool(job and job.active))


@bp.post("/staff/rounds/<rid>/recipients")
@staff_page
def replace_list(rid: str):
    rnd = round_or_404(rid)
    if rnd.get("purged"):
        return message_page(409, "bad_request")
    request.max_content_length = upload_cap()
    try:
        replace_recipients(rnd, request.files, g.who)
    except LetterpressError as exc:
        status = 413 if isinstance(exc, TooLarge) else 400
        return check_page.__wrapped__(rid, error=upload_error(exc), status=status)
    return redirect(url_for("console.check_page", rid=rid))


@bp.get("/staff/rounds/<rid>/preview/<name>")
@staff_page
def preview(rid: str, name: str):
    rnd = round_or_404(rid)
    path = folder(rnd["id"]) / "preview" / name
    if name not in PREVIEWS or not path.is_file():
        abort(404)
    return send_file(path, mimetype=CONTENT_TYPES[path.suffix], max_age=0)


@bp.app_template_filter("when")
def when(value) -> str:
    """An ISO time kept on a round or in the staff log as local ``YYYY-MM-DD HH:MM``."""
    import datetime as _dt

    try:
        moment = _dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value or "")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")
