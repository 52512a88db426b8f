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
import hmac
from typing import Optional, Tuple

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from letterpress.errors import BadgeRefused
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
