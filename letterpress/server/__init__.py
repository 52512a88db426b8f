"""The web app volunteers' phones and staff use: Flask app factory.

Build the app first, run it second (``letterpress.server.run.serve``); tests
use the app without a socket::

    app = create_app("sqlite:///output/letterpress.db")
    serve(app, "127.0.0.1", 8470)

Routes (paths are case-insensitive in their first letter: ``/H/`` and ``/h/``):

=============================  =====================================================
``GET /``                      start page (logged-in volunteers go to ``/home``)
``GET /V/<token>``             badge link: log the phone in; 302 to ``/home``, 401
``GET /home``                  the volunteer's round list; 302 to ``/`` when not logged in
``/home/round.json``, ``POST /home/sync``, ``/offline``, ``/sw.js``: the phone's offline
                               copy (:mod:`letterpress.server.round`)
``GET /go?code=``              a typed code: 302 to ``/H/<code>``, 404
``POST /logout``               CSRF; 302 to ``/``
``GET /H/<code>``              a slip: full for a volunteer of its batch, masked for
                               anyone else; 404 unknown/malformed/revoked code
``POST /H/<code>``             record an outcome: CSRF + nonce; 302 back (PRG);
                               403 not logged in / other batch, 400 bad CSRF, 404
``GET /S/<token>``             one-time staff link: 302 to ``/dashboard``, 401
``GET /dashboard``             staff only (403 otherwise)
``POST /dashboard/undo``       staff, CSRF: undo an event with a reason; 302 back
``POST /api/events``           bearer badge token: 201, 200, 409, 404, 403, 401, 400, 410
``GET /api/batches/<id>/status``  staff API token or staff cookie: 200, 401, 404
=============================  =====================================================

Anonymous clients get 429 with ``Retry-After`` after too many failed attempts
(see :mod:`letterpress.server.ratelimit`). Every response carries strict
security headers; pages with personal data are never cached.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from flask import Flask, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from letterpress.errors import ConfigError, LedgerError
from letterpress.i18n import _
from letterpress.server import i18n
from letterpress.server.auth import csrf_token, derive_key, is_staff
from letterpress.server.ratelimit import DEFAULT_LIMIT, DEFAULT_WINDOW, FailureLimiter

#: Largest upload the staff console accepts by default, in bytes.
DEFAULT_UPLOAD_LIMIT = 20 * 1024 * 1024

#: Content-Security-Policy of every response: scripts, styles and the service worker only
#: from the app itself (no inline script, no other site).
CSP = ("default-src 'none'; script-src 'self'; worker-src 'self'; connect-src 'self'; "
       "style-src 'self'; img-src 'self'; manifest-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
#: Headers of every response.
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                    ("X-Frame-Options", "DENY"), ("Content-Security-Policy", CSP),
                    ("Cross-Origin-Opener-Policy", "same-origin"))
#: Headers of every response but static files: nothing personal is ever cached.
NO_STORE_HEADERS = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))
#: How long a volunteer stays logged in on a phone (the badge itself lasts the round).
VOLUNTEER_SESSION_DAYS = 14


@dataclass
class ServerState:
    """What the views share: the ledger, its secret and the failure counter."""

    ledger: Any
    secret: bytes
    limiter: FailureLimiter
    owns_ledger: bool = True

    def close(self) -> None:
        if self.owns_ledger:
            self.ledger.close()


#: Header of the phone's background requests (service worker: keeping the round, syncing).
BACKGROUND_HEADER = "X-Letterpress-Background"


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, ``Secure`` when the request came over https
    (unless ``secure_cookies`` forces it either way).

    The phone's background requests never set the cookie: an answer arriving after
    the volunteer logged out would otherwise bring the session back."""

    def get_cookie_secure(self, app: Flask) -> bool:
        forced = app.config.get("LETTERPRESS_SECURE_COOKIES")
        if forced is not None:
            return bool(forced)
        return request.is_secure

    def should_set_cookie(self, app: Flask, session) -> bool:
        if request.headers.get(BACKGROUND_HEADER):
            return False
        return super().should_set_cookie(app, session)


#: Where a reverse proxy runs unless ``--proxy`` says otherwise: this computer.
DEFAULT_PROXIES = ("127.0.0.1", "::1")
_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
              "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")


def proxy_networks(proxies: Sequence[str]) -> tuple:
    """The addresses (or networks, ``10.0.0.0/8``) of ``--proxy`` as ``ipaddress`` networks;
    :class:`ConfigError` ``bad_proxy`` for one that is not an address."""
    out = []
    for text in proxies:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if part.lower() == "localhost":
                out += [ipaddress.ip_network(a) for a in DEFAULT_PROXIES]
                continue
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ConfigError(_("--proxy %(value)r is not an IP address", value=part),
                                  code="bad_proxy",
                                  hint=_("give the reverse proxy's address, e.g. --proxy "
                                         "127.0.0.1 or --proxy 10.0.0.5")) from None
    return tuple(out)


class TrustedProxies:
    """WSGI middleware: ``X-Forwarded-*`` are believed (werkzeug's ``ProxyFix``, one
    proxy) only on connections from the proxy's address; anyone else's are removed, so a
    phone cannot pose as another address to dodge the failed-attempt limit."""

    def __init__(self, app: Callable, networks: Sequence[Any]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1)
        self.networks = tuple(networks)

    def trusted(self, addr: Optional[str]) -> bool:
        try:
            ip: Any = ipaddress.ip_address((addr or "").split("%")[0])
        except ValueError:
            return False
        mapped = getattr(ip, "ipv4_mapped", None)
        if mapped is not None:
            ip = mapped
        return any(ip in net for net in self.networks)

    def __call__(self, environ: dict, start_response: Callable):
        if self.trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        for name in _FORWARDED:
            environ.pop(name, None)
        return self.app(environ, start_response)


def create_app(ledger_url: Optional[str], *, behind_proxy: bool = False,
               secure_cookies: Optional[bool] = None, rate_limit: int = DEFAULT_LIMIT,
               rate_window: float = DEFAULT_WINDOW, ledger: Any = None,
               rounds_dir: Optional[str] = None, upload_limit: Optional[int] = None,
               create: bool = False, proxies: Sequence[str] = DEFAULT_PROXIES) -> Flask:
    """The web app over the ledger at ``ledger_url`` (which must exist).

    ``behind_proxy`` trusts one reverse proxy's ``X-Forwarded-For`` and
    ``X-Forwarded-Proto``, only on connections from ``proxies`` (addresses or
    networks; default this computer); ``secure_cookies`` None marks cookies ``Secure`` when
    the request came over https, True or False forces it. ``rate_limit``
    failed attempts per ``rate_window`` seconds are allowed per anonymous
    client. An open ``ledger`` may be passed instead of a URL (it is then not
    closed by :func:`close_app`); ``create`` makes a missing ledger. The staff
    console keeps each round's uploads and files under ``rounds_dir`` (default:
    ``rounds/`` beside a SQLite ledger, else ``output/rounds``); uploads larger
    than ``upload_limit`` bytes (default 20 MB) are refused with 413. Raises :class:`letterpress.errors.LedgerError`
    (``no_ledger``...) when the ledger cannot be opened.
    """
    networks = proxy_networks(proxies) if behind_proxy else ()
    owns = ledger is None
    if ledger is None:
        from letterpress.ledger import Ledger
        ledger = Ledger.open(ledger_url, create=create)
    try:
        secret = ledger.secret()
    except BaseException:
        if owns:
            ledger.close()
        raise
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(
        SECRET_KEY=derive_key(secret, "session"),
        SESSION_COOKIE_NAME="letterpress",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=_dt.timedelta(days=VOLUNTEER_SESSION_DAYS),
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
        MAX_CONTENT_LENGTH=64 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        LETTERPRESS_SECURE_COOKIES=secure_cookies,
        LETTERPRESS_BEHIND_PROXY=behind_proxy,
        LETTERPRESS_ROUNDS_DIR=rounds_dir or _default_rounds_dir(ledger),
        LETTERPRESS_UPLOAD_LIMIT=upload_limit or DEFAULT_UPLOAD_LIMIT,
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    assert isinstance(app.json, DefaultJSONProvider)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.session_interface = _SessionInterface()
    app.extensions["letterpress"] = ServerState(
        ledger, secret, FailureLimiter(rate_limit, rate_window), owns)
    from letterpress.server.jobs import JobQueue
    app.extensions["letterpress_jobs"] = JobQueue()
    from letterpress.ledger.livetally import Tallies
    app.extensions["letterpress_tallies"] = Tallies()
    # Volunteers' event posts take a light path past Flask's request machinery; anything
    # unusual about a post is handed on to the Flask view below it.
    from letterpress.server.fastpath import EventPosts
    app.wsgi_app = EventPosts(app, app.wsgi_app)  # type: ignore[method-assign]
    if behind_proxy:
        app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
            app.wsgi_app, networks)

    from letterpress.server.accounts import bp as accounts_bp
    from letterpress.server.api import bp as api_bp
    from letterpress.server.api_rounds import bp as api_rounds_bp
    from letterpress.server.console import bp as console_bp
    from letterpress.server.console_round import bp as console_round_bp
    from letterpress.server.round import bp as round_bp
    from letterpress.server.staff import bp as staff_bp
    from letterpress.server.views import bp as pages_bp
    for blueprint in (pages_bp, staff_bp, api_bp, accounts_bp, console_bp, console_round_bp,
                      api_rounds_bp, round_bp):
        app.register_blueprint(blueprint)
    _install_hooks(app)
    return app


def _default_rounds_dir(ledger: Any) -> str:
    from pathlib import Path

    from letterpress.ledger.schema import sqlite_path

    path = sqlite_path(ledger.url)
    return str(path.parent / "rounds") if path is not None else str(Path("output") / "rounds")


def setup_link(app: Flask, base_url: str) -> Optional[str]:
    """The one-time first-setup link when the ledger has no staff account yet, else None."""
    from letterpress.ledger import accounts

    ledger = app.extensions["letterpress"].ledger
    if accounts.staff_names(ledger):
        return None
    return f"{base_url.rstrip('/')}/staff/join/{accounts.new_invite(ledger, '')}"


def warm_up(app: Flask) -> None:
    """Load every batch's counts into memory in the background (the first view of a large
    batch would otherwise wait for it: seconds at 100,000 households)."""
    import threading

    ledger = app.extensions["letterpress"].ledger
    tallies = app.extensions["letterpress_tallies"]

    def load() -> None:
        try:
            for batch in ledger.batches():
                tallies.of(ledger, batch.id)
        except Exception:       # a page will load it (and report any problem) itself
            app.logger.warning("could not load the counts in advance", exc_info=True)

    threading.Thread(target=load, name="letterpress-warm-up", daemon=True).start()


def close_app(app: Flask) -> None:
    """Let a running console job finish, then release the ledger the app opened."""
    queue = app.extensions.get("letterpress_jobs")
    if queue is not None:
        queue.close()
    app.extensions["letterpress"].close()


def staff_link(app: Flask, base_url: str,
               ttl: _dt.timedelta = _dt.timedelta(hours=12)) -> str:
    """A one-time staff login link ``{base_url}/S/{token}`` (valid ``ttl``, usable once)."""
    token = app.extensions["letterpress"].ledger.new_staff_token(ttl)
    return f"{base_url.rstrip('/')}/S/{token}"


def ledger_of(app: Flask) -> Any:
    """The ledger the app serves (for ``describe()`` and staff links)."""
    return app.extensions["letterpress"].ledger


def _install_hooks(app: Flask) -> None:
    i18n.install(app)

    @app.context_processor
    def _template_globals() -> dict:
        lang = i18n.page_lang()
        return {
            "lang": lang,
            "other_lang": "en" if lang == "zh" else "zh",
            "csrf_token": csrf_token,
            "staff": is_staff,
        }

    @app.after_request
    def _headers(response):
        h = response.headers
        for name, value in SECURITY_HEADERS:
            h[name] = value
        if not request.path.startswith("/static/"):
            for name, value in NO_STORE_HEADERS:
                h[name] = value
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        key = {400: "bad_request", 404: "not_found", 413: "bad_request"}.get(exc.code or 500,
                                                                          "bad_request")
        if request.path.startswith("/api/"):
            name = (exc.name or "error").lower().replace(" ", "_")
            if exc.code == 413:
                name = "too_large"
            return jsonify(error=name, message=exc.description or exc.name,
                           problems=[]), exc.code
        if (exc.code or 500) >= 500:
            key = "server"
        return message_page(exc.code or 500, key)

    @app.errorhandler(Exception)
    def _server_error(exc: Exception):
        if isinstance(exc, LedgerError) and exc.code in ("ledger_busy", "ledger_unreachable"):
            app.logger.warning("ledger not available: %s", exc)
            if request.path.startswith("/api/"):
                return jsonify(error=exc.code, message=exc.message), 503, {"Retry-After": "5"}
            return message_page(503, "busy", retry_after=5)
        # The traceback goes to the server's log for the operator, never to the browser.
        app.logger.error("error on %s %s", request.method, request.path, exc_info=exc)
        if request.path.startswith("/api/"):
            return jsonify(error="internal_error",
                           message="the server had a problem; the event may not be recorded"), 500
        return message_page(500, "server")


def message_page(status: int, key: str, *, retry_after: Optional[int] = None, **values):
    """A plain page with a title and a sentence (errors, notices) in the page's language."""
    title, text = i18n.message_text(key, **values)
    body = render_template("message.html", title=title, text=text, status=status)
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return body, status, headers
