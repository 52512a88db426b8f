"""Who is asking: volunteer badges, staff logins, CSRF tokens, the staff API token.

Sessions are Flask's signed cookies (itsdangerous), signed with a key derived
from the secret kept in the ledger, so several servers on one database accept
each other's cookies. The session holds:

``vt``    the volunteer's badge token; checked against the ledger on every
          request, so a revoked badge stops working at once;
``st``    when staff logged in with a one-time link (seconds since the epoch);
``csrf``  the token every form carries in a hidden field.

Staff API token: ``GET /api/batches/{id}/status`` takes ``Authorization:
Bearer TOKEN`` where TOKEN is made by :func:`staff_api_token` (shown on the
dashboard): a timestamped signature over ``"staff"`` with the ledger's secret,
valid for :data:`STAFF_API_TTL` seconds, accepted by every server of the
ledger. The staff session cookie is accepted there too.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Optional

from flask import current_app, g, request, session
from itsdangerous import BadSignature, URLSafeTimedSerializer

from letterpress.errors import LedgerError

#: How long a staff login (session cookie) lasts, in seconds.
STAFF_SESSION_TTL = 12 * 3600
#: How long a staff API token is accepted, in seconds.
STAFF_API_TTL = 12 * 3600
#: Longest token looked up in the ledger (badge tokens are about 43 characters).
MAX_TOKEN = 200

_STAFF_API_SALT = "letterpress.staff-api"


@dataclass(frozen=True)
class VolunteerLogin:
    """A volunteer whose badge token the ledger accepted."""

    token: str
    batch_id: int
    name: str

    @property
    def key(self) -> str:
        """Tells volunteers apart (not by address): a digest of the token."""
        return "token:" + hashlib.sha256(self.token.encode()).hexdigest()[:16]


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose, derived from the ledger's secret."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def _ledger():
    return current_app.extensions["letterpress"].ledger


def check_badge(token: Optional[str]) -> Optional[VolunteerLogin]:
    """The volunteer of a badge token, or None when the ledger does not accept it."""
    if not token or len(token) > MAX_TOKEN:
        return None
    try:
        batch_id, name = _ledger().authenticate(token)
    except LedgerError:
        return None
    return VolunteerLogin(token, int(batch_id), name)


def session_volunteer() -> Optional[VolunteerLogin]:
    """The volunteer logged in by cookie (checked once per request), or None."""
    if "volunteer" not in g:
        token = session.get("vt")
        login = check_badge(token) if token else None
        if token and login is None:
            session.pop("vt", None)      # revoked since: forget it
        g.volunteer = login
    return g.volunteer


def log_in_volunteer(login: VolunteerLogin) -> None:
    session["vt"] = login.token
    session.permanent = True
    g.volunteer = login


def log_out_volunteer() -> None:
    session.pop("vt", None)
    g.volunteer = None


def bearer_token() -> Optional[str]:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


# --- staff -------------------------------------------------------------------------------------

def is_staff() -> bool:
    since = session.get("st")
    return isinstance(since, (int, float)) and 0 <= time.time() - since < STAFF_SESSION_TTL


def log_in_staff(name: str = "") -> None:
    """Log staff in for :data:`STAFF_SESSION_TTL`; ``name`` is the account ("" for a
    one-time link made by ``serve``)."""
    session["st"] = int(time.time())
    session["sn"] = name
    session.permanent = True


def log_out_staff() -> None:
    session.pop("st", None)
    session.pop("sn", None)


def staff_api_token(secret: bytes) -> str:
    """A bearer token for the staff API, made with the ledger's secret."""
    return URLSafeTimedSerializer(derive_key(secret, "staff-api"), salt=_STAFF_API_SALT) \
        .dumps("staff")


def check_staff_api_token(secret: bytes, token: Optional[str],
                          max_age: int = STAFF_API_TTL) -> bool:
    if not token or len(token) > MAX_TOKEN:
        return False
    try:
        value = URLSafeTimedSerializer(derive_key(secret, "staff-api"), salt=_STAFF_API_SALT) \
            .loads(token, max_age=max_age)
    except BadSignature:        # SignatureExpired is a BadSignature too
        return False
    return value == "staff"


# --- CSRF --------------------------------------------------------------------------------------

def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 20:
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return token


def csrf_ok() -> bool:
    """True when the form's ``csrf`` field matches the session's token."""
    sent = request.form.get("csrf", "")
    expected = session.get("csrf")
    return bool(sent) and isinstance(expected, str) and hmac.compare_digest(
        sent.encode(), expected.encode())


def new_nonce() -> str:
    """A random nonce for one page load: a double tap or a resend records once."""
    return secrets.token_urlsafe(16)


# --- rate limiting -----------------------------------------------------------------------------

def client_key() -> str:
    """An anonymous client, by address (``X-Forwarded-For`` only behind a proxy: ProxyFix)."""
    return "addr:" + (request.remote_addr or "unknown")


def limiter():
    return current_app.extensions["letterpress"].limiter


def _logged_in() -> bool:
    return session_volunteer() is not None or is_staff()


def blocked() -> int:
    """Seconds this anonymous client must wait (0: not blocked; logged in: never)."""
    if _logged_in():
        return 0
    return limiter().retry_after(client_key())


def count_failure() -> None:
    """Count a failed attempt of this client, unless it is logged in (valid cookie)."""
    if not _logged_in():
        limiter().fail(client_key())
