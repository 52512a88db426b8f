"""Staff accounts, staff API tokens, invite links and the staff action log.

They live in the ledger's key/value ``meta`` table (no schema change), so every
server of one ledger shares them:

``staff:NAME``        ``{"hash": werkzeug password hash, "created": ISO time}``
``invite:DIGEST``     a one-time link that makes an account (``by`` "" = first setup)
``revoked:DIGEST``    a staff API token revoked before it expired
``log:TIME:RANDOM``   one staff action: who, what, which round, when

Staff API tokens are self-contained (``lps1.PAYLOAD.SIGNATURE``, signed with the
ledger's secret): whoever can open the ledger can make one, with or without an
account (``letterpress staff token``).
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import json
import secrets
import time
from typing import List, Optional

from sqlalchemy import delete, select

from letterpress.errors import LedgerError
from letterpress.i18n import _
from letterpress.ledger import schema as S

#: Longest staff name (the meta key holds at most 64 characters).
MAX_NAME = 40
#: Shortest password accepted.
MIN_PASSWORD = 8
_TOKEN_PREFIX = "lps1"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:48]


def _get(ledger, key: str) -> Optional[dict]:
    with ledger.transaction() as conn:
        value = conn.execute(select(S.meta.c.value).where(S.meta.c.key == key)).scalar()
    return json.loads(value) if value else None


def _put(conn, key: str, value: dict) -> None:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if not conn.execute(S.meta.update().where(S.meta.c.key == key).values(value=text)).rowcount:
        conn.execute(S.meta.insert().values(key=key, value=text))


def _now() -> str:
    return S.utcnow().isoformat(timespec="seconds")


# --- accounts ----------------------------------------------------------------------------------

def clean_name(name: str) -> str:
    """A staff name as stored; raises ``bad_staff_name`` when empty or too long."""
    name = " ".join(str(name or "").split())
    if not name or len(name) > MAX_NAME:
        raise LedgerError(_("a staff name needs 1 to %(max_name)s characters", max_name=MAX_NAME), code="bad_staff_name",
                          hint=_("give a short name, e.g. 张敏"))
    return name


def staff_names(ledger) -> List[str]:
    with ledger.transaction() as conn:
        keys = conn.execute(select(S.meta.c.key).where(S.meta.c.key.like("staff:%"))).scalars()
        return sorted(k[len("staff:"):] for k in keys)


def add_staff(ledger, name: str, password: str) -> str:
    """Make a staff account; ``staff_exists`` when the name is taken. Returns the name."""
    from werkzeug.security import generate_password_hash

    name = clean_name(name)
    if len(password or "") < MIN_PASSWORD:
        raise LedgerError(_("the password needs at least %(min_password)s characters",
                            min_password=MIN_PASSWORD),
                          code="weak_password", hint=_("choose a longer password"))
    hashed = generate_password_hash(password)
    with ledger.transaction(write=True) as conn:
        if conn.execute(select(S.meta.c.key).where(S.meta.c.key == f"staff:{name}")).first():
            raise LedgerError(_("there is already a staff account %(name)r", name=name), code="staff_exists",
                              hint=_("choose another name, or remove that account first"))
        _put(conn, f"staff:{name}", {"hash": hashed, "created": _now()})
    return name


def remove_staff(ledger, name: str) -> None:
    with ledger.transaction(write=True) as conn:
        done = conn.execute(delete(S.meta).where(S.meta.c.key == f"staff:{name}")).rowcount
    if not done:
        raise LedgerError(_("there is no staff account %(name)r", name=name), code="unknown_staff",
                          hint=_("`letterpress staff list` shows the accounts"))


def check_password(ledger, name: str, password: str) -> bool:
    from werkzeug.security import check_password_hash

    entry = _get(ledger, f"staff:{' '.join(str(name or '').split())}"[:64])
    if entry is None:
        check_password_hash("scrypt:32768:8:1$x$" + "0" * 128, password or "")  # same time
        return False
    return check_password_hash(entry["hash"], password or "")


def staff_exists(ledger, name: str) -> bool:
    return _get(ledger, f"staff:{name}"[:64]) is not None


# --- invite and setup links --------------------------------------------------------------------

def new_invite(ledger, by: str, ttl: _dt.timedelta = _dt.timedelta(days=2)) -> str:
    """A one-time link token that makes one staff account (``by`` "" for the first setup)."""
    token = secrets.token_urlsafe(24)
    expires = (S.utcnow() + ttl).isoformat(timespec="seconds")
    with ledger.transaction(write=True) as conn:
        _put(conn, f"invite:{_digest(token)}", {"by": by, "expires": expires})
    return token


def invite_valid(ledger, token: str) -> bool:
    entry = _get(ledger, f"invite:{_digest(str(token or ''))}")
    return entry is not None and entry["expires"] > _now()


def use_invite(ledger, token: str, name: str, password: str) -> str:
    """Make the account of an invite (once). ``not_authorised`` for a bad or used link."""
    key = f"invite:{_digest(str(token or ''))}"
    entry = _get(ledger, key)
    if entry is None or entry["expires"] <= _now():
        raise LedgerError(_("this link is unknown, used already or expired"), code="not_authorised",
                          hint=_("ask a colleague for a new invite link"))
    name = add_staff(ledger, name, password)
    with ledger.transaction(write=True) as conn:
        conn.execute(delete(S.meta).where(S.meta.c.key == key))
    return name


# --- staff API tokens --------------------------------------------------------------------------

def _sign(secret: bytes, payload: str) -> str:
    key = hmac.new(secret, b"staff-api-token", hashlib.sha256).digest()
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def new_api_token(ledger, name: str = "", ttl: _dt.timedelta = _dt.timedelta(hours=12)) -> str:
    """A bearer token for the staff API, valid ``ttl``, recording actions as ``name``."""
    body = {"n": name or "terminal", "e": int(time.time() + ttl.total_seconds()),
            "r": secrets.token_hex(4)}
    payload = base64.urlsafe_b64encode(json.dumps(body, ensure_ascii=False).encode()) \
        .decode().rstrip("=")
    return f"{_TOKEN_PREFIX}.{payload}.{_sign(ledger.secret(), payload)}"


def _token_body(ledger, token: str) -> Optional[dict]:
    parts = str(token or "").split(".")
    if len(parts) != 3 or parts[0] != _TOKEN_PREFIX or len(token) > 600:
        return None
    if not hmac.compare_digest(parts[2], _sign(ledger.secret(), parts[1])):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def check_api_token(ledger, token: str) -> Optional[str]:
    """The staff name of a valid, unexpired, unrevoked token, else None."""
    body = _token_body(ledger, token)
    if body is None or int(body.get("e", 0)) <= time.time():
        return None
    if _get(ledger, f"revoked:{_digest(token)}") is not None:
        return None
    return str(body.get("n") or "terminal")


def revoke_api_token(ledger, token: str) -> None:
    """Revoke a token at once; ``unknown_token`` when it is not one of this ledger's."""
    body = _token_body(ledger, token)
    if body is None:
        raise LedgerError(_("this is not a staff token of this ledger"), code="unknown_token",
                          hint=_("copy the whole token `letterpress staff token` printed"))
    with ledger.transaction(write=True) as conn:
        _put(conn, f"revoked:{_digest(token)}", {"at": _now(), "expires": body.get("e")})


# --- staff action log --------------------------------------------------------------------------

def log_action(ledger, who: str, action: str, round_title: str = "", detail: str = "") -> None:
    """Record a staff action (build, reprint, purge, undo, account changes...)."""
    key = f"log:{S.utcnow():%Y%m%dT%H%M%S.%f}:{secrets.token_hex(3)}"
    with ledger.transaction(write=True) as conn:
        _put(conn, key, {"who": who, "action": action, "round": round_title,
                         "detail": detail[:500], "at": _now()})


def actions(ledger, limit: int = 50) -> List[dict]:
    """The most recent staff actions, newest first."""
    with ledger.transaction() as conn:
        rows = conn.execute(select(S.meta.c.value).where(S.meta.c.key.like("log:%"))
                            .order_by(S.meta.c.key.desc()).limit(limit)).scalars().all()
    return [json.loads(v) for v in rows]
