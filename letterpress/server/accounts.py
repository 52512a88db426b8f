"""Staff accounts on the web: first setup, invite links, sign-in, sign-out, removal.

Who a staff request comes from (:func:`current_staff`): a signed-in account
(session, 12 hours), the one-time link ``serve`` prints (``"staff link"``), or a
bearer token from ``letterpress staff token`` (its ``--name``). Sign-in failures
count against the client like guessed codes (429 after too many).
"""
from __future__ import annotations

import hmac
from typing import Optional

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from letterpress.errors import LedgerError
from letterpress.i18n import _
from letterpress.ledger import accounts
from letterpress.server import auth, i18n, message_page

bp = Blueprint("accounts", __name__)

#: The name actions are recorded under after the one-time link of ``serve``.
LINK_NAME = "staff link"


def _ledger():
    return current_app.extensions["letterpress"].ledger


def current_staff() -> Optional[str]:
    """The staff name of this request (session or bearer token), or None."""
    if "staff_name" in g:
        return g.staff_name
    name: Optional[str] = None
    token = auth.bearer_token()
    if token:
        name = accounts.check_api_token(_ledger(), token)
        if name is None and auth.check_staff_api_token(
                current_app.extensions["letterpress"].secret, token):
            name = "dashboard token"
    elif auth.is_staff():
        sn = session.get("sn") or ""
        if not sn:
            name = LINK_NAME
        elif accounts.staff_exists(_ledger(), sn):
            name = sn
        else:                       # the account was removed: its sessions end
            auth.log_out_staff()
    g.staff_name = name
    return name


def csrf_header_ok() -> bool:
    """For the JSON API used with a session cookie: ``X-CSRF-Token`` must match."""
    sent = request.headers.get("X-CSRF-Token", "") or request.form.get("csrf", "")
    expected = session.get("csrf")
    return bool(sent) and isinstance(expected, str) and hmac.compare_digest(
        sent.encode(), expected.encode())


def sign_in_redirect():
    return redirect(url_for("accounts.sign_in", next=request.full_path.rstrip("?")))


def _safe_next(value: Optional[str]) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return url_for("console.rounds_page")


@bp.route("/staff/sign-in", methods=["GET", "POST"])
def sign_in():
    error = ""
    if request.method == "POST":
        waited = auth.blocked()
        if waited:
            return message_page(429, "too_many", retry_after=waited,
                                minutes=max(1, (waited + 59) // 60))
        if not auth.csrf_ok():
            return message_page(400, "csrf")
        name = request.form.get("name", "").strip()[:80]
        if accounts.check_password(_ledger(), name, request.form.get("password", "")[:500]):
            name = accounts.clean_name(name)
            session.clear()
            auth.log_in_staff(name)
            return redirect(_safe_next(request.args.get("next")))
        auth.count_failure()
        error = _("Wrong name or password.")
    status = 401 if error else 200
    return render_template("console/sign_in.html", error=error,
                           no_accounts=not accounts.staff_names(_ledger())), status


@bp.post("/staff/sign-out")
def sign_out():
    if auth.csrf_ok():
        auth.log_out_staff()
    return redirect(url_for("accounts.sign_in"))


@bp.route("/staff/join/<token>", methods=["GET", "POST"])
def join(token: str):
    """The first-setup link of ``serve`` and invite links: make an account, sign in."""
    ledger = _ledger()
    if len(token) > 100 or not accounts.invite_valid(ledger, token):
        auth.count_failure()
        return message_page(401, "bad_invite")
    error = ""
    if request.method == "POST":
        if not auth.csrf_ok():
            return message_page(400, "csrf")
        password = request.form.get("password", "")[:500]
        if password != request.form.get("password2", "")[:500]:
            error = _("The two passwords differ.")
        else:
            try:
                name = accounts.use_invite(ledger, token, request.form.get("name", ""), password)
            except LedgerError as exc:
                error = i18n.label("err", exc.code) if exc.code in (
                    "staff_exists", "weak_password", "bad_staff_name") else exc.message
            else:
                accounts.log_action(ledger, name, "account_created")
                session.clear()
                auth.log_in_staff(name)
                return redirect(url_for("console.rounds_page"))
    first = not accounts.staff_names(ledger)
    return render_template("console/join.html", error=error, first=first,
                           min_password=accounts.MIN_PASSWORD), 400 if error else 200


@bp.get("/staff/people")
def people():
    who = current_staff()
    if who is None:
        return sign_in_redirect()
    return render_template("console/people.html", who=who,
                           names=accounts.staff_names(_ledger()),
                           actions=accounts.actions(_ledger(), 100), invite=None)


@bp.post("/staff/people")
def people_change():
    who = current_staff()
    if who is None:
        return sign_in_redirect()
    if not auth.csrf_ok():
        return message_page(400, "csrf")
    ledger = _ledger()
    invite = None
    if request.form.get("do") == "invite":
        token = accounts.new_invite(ledger, who)
        invite = url_for("accounts.join", token=token, _external=True)
        accounts.log_action(ledger, who, "invite")
    elif request.form.get("do") == "remove":
        name = request.form.get("name", "")
        try:
            accounts.remove_staff(ledger, name)
        except LedgerError:
            return message_page(404, "not_found")
        accounts.log_action(ledger, who, "remove_staff", detail=name)
    return render_template("console/people.html", who=who, names=accounts.staff_names(ledger),
                           actions=accounts.actions(ledger, 100), invite=invite)
