"""Rounds started from the staff console, before and after their first build.

A round is a batch in the making: its title and letter settings, the recipient
list uploaded last, what the check found, and (once built) the ledger batch id.
Kept as JSON in the ledger's ``meta`` table under ``round:ID`` (no schema change).
"""
from __future__ import annotations

import json
from typing import List, Optional

from sqlalchemy import select

from letterpress.errors import LedgerError
from letterpress.i18n import _
from letterpress.ledger import schema as S


def _put(conn, key: str, value: dict) -> None:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if not conn.execute(S.meta.update().where(S.meta.c.key == key).values(value=text)).rowcount:
        conn.execute(S.meta.insert().values(key=key, value=text))


def create(ledger, title: str, fields: dict) -> dict:
    """A new round; ``round_exists`` (409) when a round or batch has that title."""
    title = " ".join(str(title or "").split())
    if not title or len(title) > 200:
        raise LedgerError(_("a round needs a title (at most 200 characters)"), code="bad_title",
                          hint=_("e.g. 2020-02-24 青鱼嘴社区 慰问物资"))
    with ledger.transaction(write=True) as conn:
        if any(r["title"] == title for r in _all(conn)) or conn.execute(
                select(S.batches.c.id).where(S.batches.c.title == title)).first():
            raise LedgerError(_("there is already a round called %(title)r", title=title), code="round_exists",
                              hint=_("choose another title, or open that round"))
        last = conn.execute(select(S.meta.c.value).where(S.meta.c.key == "rounds:next")).scalar()
        rid = int(last or 0) + 1
        if last is None:
            conn.execute(S.meta.insert().values(key="rounds:next", value=str(rid)))
        else:
            conn.execute(S.meta.update().where(S.meta.c.key == "rounds:next").values(value=str(rid)))
        record = dict(fields, id=rid, title=title, created=S.utcnow().isoformat(timespec="seconds"))
        _put(conn, f"round:{rid}", record)
    return record


def _all(conn) -> List[dict]:
    rows = conn.execute(select(S.meta.c.value).where(S.meta.c.key.like("round:%"))).scalars()
    return [json.loads(v) for v in rows]


def get(ledger, rid: int) -> dict:
    with ledger.transaction() as conn:
        value = conn.execute(select(S.meta.c.value)
                             .where(S.meta.c.key == f"round:{int(rid)}")).scalar()
    if value is None:
        raise LedgerError(_("there is no round %(rid)s", rid=rid), code="unknown_round")
    return json.loads(value)


def find(ledger, rid: str) -> Optional[dict]:
    """The round of an id given in a URL, or None."""
    try:
        return get(ledger, int(rid))
    except (ValueError, LedgerError):
        return None


def update(ledger, rid: int, **changes) -> dict:
    with ledger.transaction(write=True) as conn:
        value = conn.execute(select(S.meta.c.value)
                             .where(S.meta.c.key == f"round:{int(rid)}")).scalar()
        if value is None:
            raise LedgerError(_("there is no round %(rid)s", rid=rid), code="unknown_round")
        record = dict(json.loads(value), **changes)
        _put(conn, f"round:{int(rid)}", record)
    return record


def all_rounds(ledger) -> List[dict]:
    """Every round, newest first."""
    with ledger.transaction() as conn:
        rounds = _all(conn)
    return sorted(rounds, key=lambda r: r["id"], reverse=True)


def delete(ledger, rid: int) -> None:
    """Forget a round that never got going (its upload could not be read)."""
    from sqlalchemy import delete as _delete

    with ledger.transaction(write=True) as conn:
        conn.execute(_delete(S.meta).where(S.meta.c.key == f"round:{int(rid)}"))
