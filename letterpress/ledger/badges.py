"""Volunteers' badge tokens: made, hashed and checked.

A badge token is ``HMAC-SHA256(secret, "batch_id:name:version")`` in URL-safe
base64: 256 bits, the same every time the batch is built again. The ledger keeps
only its hash (:func:`letterpress.ledger.register.token_hash`); revoking a badge
bumps the version, so the printed badge stops working and the next run sheet
carries a new one. Every function takes the ledger's secret (and a connection
where it reads), so this module depends on the schema only.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.engine import Connection

from letterpress.errors import BadgeRefused, LedgerError
from letterpress.i18n import N_, _
from letterpress.ledger import schema as S
from letterpress.ledger.register import token_hash

#: Longest text that can be a badge token (a real one is 43 characters).
MAX_TOKEN = 100
_NOT_AUTHORISED_HINT = N_("ask staff for a new badge (the volunteer link on the run sheet)")

#: A badge's volunteer and batch by the token's hash (built once: compiled once).
_BADGE = S.Prepared(
    select(S.volunteers.c.batch_id, S.volunteers.c.name, S.volunteers.c.token_version,
           S.volunteers.c.idx, S.batches.c.purged_at)
    .join_from(S.volunteers, S.batches, S.batches.c.id == S.volunteers.c.batch_id)
    .where(S.volunteers.c.token_hash == bindparam("token_hash")))


def refused() -> BadgeRefused:
    """The one answer to every refused badge: it does not say why."""
    return BadgeRefused(_("this badge is not valid (unknown, revoked or of another batch)"),
                        code="not_authorised", hint=_(_NOT_AUTHORISED_HINT))


def token(secret: bytes, batch_id: int, name: str, version: int) -> str:
    """The badge token of a volunteer at a token version."""
    mac = hmac.digest(secret, f"{batch_id}:{name}:{version}".encode("utf-8"), "sha256")
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def key(text: Optional[str]) -> str:
    """The hash the ledger keeps of a badge token (:class:`BadgeRefused` for a text
    that cannot be a badge token)."""
    text = str(text or "").strip()
    if not text or len(text) > MAX_TOKEN:
        raise refused()
    return token_hash(text)


def check(secret: bytes, text: str, batch_id: Optional[int], name: Optional[str],
          version: Optional[int], idx: Optional[int],
          purged_at: Optional[_dt.datetime]) -> Tuple[int, str]:
    """``(batch_id, name)`` when ``text`` is the badge of the volunteer row found by
    its hash (all None: none was found); :class:`BadgeRefused` otherwise."""
    if batch_id is None or name is None or version is None or idx is None \
            or purged_at is not None:
        raise refused()
    if not hmac.compare_digest(str(text).strip(), token(secret, batch_id, name, version)):
        raise refused()
    return batch_id, name


def holder(conn: Connection, secret: bytes, text: str) -> Tuple[int, str]:
    """``(batch_id, volunteer name)`` of a badge token, in one query on ``conn``."""
    found = _BADGE.run(conn, {"token_hash": key(text)})
    row = found[0] if found else None
    if row is None:
        raise refused()
    return check(secret, text, row.batch_id, row.name, row.token_version, row.idx,
                 row.purged_at)


# --- badge states, revoking and reissuing (``letterpress volunteers``) ------------------------

#: A volunteer's badge: ``active`` (works), ``revoked`` (stopped by staff until reissued),
#: ``off_list`` (the volunteer is no longer on the batch's list).
STATES = ("active", "revoked", "off_list")


@dataclass(frozen=True)
class BadgeState:
    """One volunteer of a batch and the state of their badge."""

    name: str
    index: Optional[int]          # run-sheet number; None when off the list
    state: str                    # one of STATES
    version: int                  # how many badges this volunteer has had
    revoked_at: Optional[_dt.datetime]
    households: int = 0


def _revoked_hash(row_id: int, version: int) -> str:
    """A stored hash that no token has: the badge of that row is revoked."""
    return hashlib.sha256(f"revoked:{row_id}:{version}".encode()).hexdigest()


def state_of(secret: bytes, row) -> str:
    if row.idx is None:
        return "off_list"
    if row.token_hash != token_hash(token(secret, row.batch_id, row.name, row.token_version)):
        return "revoked"
    return "active"


def states(conn: Connection, secret: bytes, batch_id: int) -> List[BadgeState]:
    """Every volunteer the batch has had, those on the list first (in run-sheet order)."""
    v_t, h_t = S.volunteers, S.households
    counts: Dict[str, int] = dict(conn.execute(
        select(h_t.c.volunteer, func.count()).where(and_(
            h_t.c.batch_id == batch_id, h_t.c.withdrawn_at.is_(None)))
        .group_by(h_t.c.volunteer)).all())
    rows = conn.execute(select(v_t).where(v_t.c.batch_id == batch_id)
                        .order_by(v_t.c.idx.is_(None), v_t.c.idx, v_t.c.name)).all()
    return [BadgeState(r.name, r.idx, state_of(secret, r), r.token_version, r.revoked_at,
                       int(counts.get(r.name, 0))) for r in rows]


def _row(conn: Connection, batch_id: int, name: str):
    v_t = S.volunteers
    row = conn.execute(select(v_t).where(and_(v_t.c.batch_id == batch_id, v_t.c.name == name))
                       .with_for_update()).first()
    if row is None:
        known = conn.execute(select(v_t.c.name).where(v_t.c.batch_id == batch_id)
                             .order_by(v_t.c.idx)).scalars().all()
        hint = _("write the name as on the recipient list")
        if known:
            hint = _("write the name as on the recipient list (volunteers: %(names)s)",
                     names=", ".join(known[:10]))
        raise LedgerError(_("this batch has no volunteer called %(name)r", name=name),
                          code="unknown_volunteer", hint=hint)
    return row


def revoke(conn: Connection, batch_id: int, name: str) -> BadgeState:
    """Stop a volunteer's badge at once: no badge of theirs works until :func:`reissue`."""
    row = _row(conn, batch_id, name)
    version = row.token_version + 1
    now = S.utcnow()
    conn.execute(S.volunteers.update().where(S.volunteers.c.id == row.id).values(
        token_version=version, token_hash=_revoked_hash(row.id, version), revoked_at=now))
    return BadgeState(name, row.idx, "revoked" if row.idx is not None else "off_list",
                      version, now)


def reissue(conn: Connection, secret: bytes, batch_id: int, name: str) -> Tuple[int, str]:
    """A new badge for a volunteer on the list (every earlier one stops working):
    ``(run-sheet number, token)``."""
    row = _row(conn, batch_id, name)
    if row.idx is None:
        raise LedgerError(_("%(name)r is no longer on the batch's list", name=name),
                          code="volunteer_off_list",
                          hint=_("put the volunteer back on the recipient list and run "
                                 "`letterpress build` again; the run sheet carries a new badge"))
    version = row.token_version + 1
    value = token(secret, batch_id, name, version)
    conn.execute(S.volunteers.update().where(S.volunteers.c.id == row.id).values(
        token_version=version, token_hash=token_hash(value), revoked_at=S.utcnow()))
    return row.idx, value
