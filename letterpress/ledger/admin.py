"""Staff operations on a batch in the ledger: new codes for reprinted slips, purging personal data.

Both run inside a write transaction that :class:`letterpress.ledger.Ledger`
opens; both only append or overwrite, never delete.
"""
from __future__ import annotations

import hashlib
import json
from typing import Callable, Dict, List, Optional

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.engine import Connection

from letterpress.errors import LedgerError
from letterpress.i18n import _
from letterpress.ledger import codes as codes_mod
from letterpress.ledger import schema as S
from letterpress.ledger import written
from letterpress.ledger.views import get_batch


def reissue_codes(conn: Connection, batch_id: int, keys: List[str],
                  fresh_codes: Callable[[Connection, int], List[str]],
                  chosen: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """New codes for the listed households of a batch (by recipient id), old ones revoked.

    ``chosen`` gives the new canonical code of some households (a reprint's
    slips were made with them before this commit); a chosen code that is in
    the ledger already is not used (another one is made).
    """
    h_t, c_t = S.households, S.codes
    batch = get_batch(conn, batch_id)
    if batch.purged_at is not None:
        raise LedgerError(_("the batch %(title)r was purged", title=batch.title), code="batch_purged")
    rows = {r.household_key: r for r in conn.execute(
        select(h_t).where(and_(h_t.c.batch_id == batch_id, h_t.c.withdrawn_at.is_(None)))
        .order_by(h_t.c.id))}
    unknown = [k for k in keys if k not in rows]
    if unknown:
        raise LedgerError(
            _("no household on the list of %(title)r has the id(s) %(ids)s", title=batch.title,
              ids=", ".join(map(repr, unknown))), code="unknown_household",
            hint=_("use the ids of the recipient list (the manifest's id column)"))
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    now = S.utcnow()
    ids = [rows[k].id for k in keys]
    conn.execute(update(c_t).where(and_(c_t.c.household_id == bindparam("b_id"),
                                        c_t.c.revoked_at.is_(None)))
                 .values(revoked_at=now, reason="reprint"), [{"b_id": i} for i in ids])
    chosen = dict(chosen or {})
    taken = set(conn.execute(select(c_t.c.code).where(c_t.c.code.in_(list(chosen.values()))))
                .scalars()) if chosen else set()
    spare = iter(fresh_codes(conn, len(keys)))
    new = [chosen[k] if chosen.get(k) and chosen[k] not in taken else next(spare) for k in keys]
    conn.execute(c_t.insert(), [dict(code=code, household_id=hid, issued_at=now, reason="")
                                for hid, code in zip(ids, new)])
    return {k: codes_mod.printed(code) for k, code in zip(keys, new)}


def get_json(conn: Connection, key: str):
    """The JSON value kept under ``key`` in ``meta`` (None when there is none)."""
    value = conn.execute(select(S.meta.c.value).where(S.meta.c.key == key)).scalar()
    return json.loads(value) if value else None


def put_json(conn: Connection, key: str, value) -> None:
    text = json.dumps(value, ensure_ascii=False)
    if not conn.execute(S.meta.update().where(S.meta.c.key == key).values(value=text)).rowcount:
        conn.execute(S.meta.insert().values(key=key, value=text))


def reprint_key(batch_id: int) -> str:
    return f"batch:{batch_id}:reprint"


def plan_reprint(conn: Connection, batch_id: int, keys: List[str], folder: str,
                 fresh_codes: Callable[[Connection, int], List[str]]) -> dict:
    """``{"codes": {recipient id: canonical code}, "folder": name}``, kept in ``meta``.

    A reprint that was interrupted left its plan: its codes (and folder) are
    used again, so slips already made with them stay right.
    """
    plan = get_json(conn, reprint_key(batch_id)) or {}
    before = dict(plan.get("codes", {}))
    keys = list(dict.fromkeys(keys))
    need = [k for k in keys if k not in before]
    made = dict(zip(need, fresh_codes(conn, len(need))))
    plan = {"codes": {k: before.get(k) or made[k] for k in keys},
            "folder": plan.get("folder") or folder}
    put_json(conn, reprint_key(batch_id), plan)
    return plan


#: Household fields emptied by :func:`purge` (compound, building, grid and package stay:
#: they are needed for the counts by place and say nothing about a person on their own).
PURGED_FIELDS = ("name", "honorific", "address", "unit", "room", "phone", "category", "notes")


def purge(conn: Connection, batch_id: int, token: Callable[[int, str, int], str]) -> int:
    """Remove a batch's personal data in place; states, outcomes and counts stay.

    Households lose their names, addresses, phones, categories, notes and list
    ids; volunteers become ``volunteer 1``, ``volunteer 2``... everywhere (so
    per-volunteer counts stay) and their badges stop working; event notes and
    undo reasons are emptied; every code is revoked (reason ``purge``); the list of
    the batch's files and any reprint plan go. Returns the number of households.
    """
    h_t, v_t, e_t, c_t = S.households, S.volunteers, S.events, S.codes
    batch = get_batch(conn, batch_id)
    in_batch = select(h_t.c.id).where(h_t.c.batch_id == batch_id).scalar_subquery()
    if batch.purged_at is not None:
        return len(conn.execute(select(h_t.c.id).where(h_t.c.batch_id == batch_id)).all())
    now = S.utcnow()
    house_rows = list(conn.execute(select(h_t.c.id, h_t.c.volunteer)
                                   .where(h_t.c.batch_id == batch_id)))
    ids = [r.id for r in house_rows]
    vol_rows = list(conn.execute(select(v_t).where(v_t.c.batch_id == batch_id)
                                 .order_by(v_t.c.idx.is_(None), v_t.c.idx, v_t.c.id)))
    names: Dict[str, str] = {}
    for r in vol_rows:
        names.setdefault(r.name, f"volunteer {len(names) + 1}")
    event_rows = list(conn.execute(select(e_t.c.id, e_t.c.volunteer)
                                   .where(e_t.c.household_id.in_(in_batch))))
    for name in sorted({r.volunteer for r in house_rows} | {r.volunteer for r in event_rows}):
        if name and name not in names:
            names.setdefault(name, f"volunteer {len(names) + 1}")

    def alias(name: Optional[str]) -> str:
        if not name:
            return ""
        return names.get(name, name)

    if house_rows:
        conn.execute(update(h_t).where(h_t.c.id == bindparam("b_id")).values(
            household_key="", volunteer=bindparam("b_volunteer"), updated_at=now,
            **{f: "" for f in PURGED_FIELDS}),
            [{"b_id": r.id, "b_volunteer": alias(r.volunteer)} for r in house_rows])
    if event_rows:
        conn.execute(update(e_t).where(e_t.c.id == bindparam("b_id")).values(
            note="", volunteer=bindparam("b_volunteer")),
            [{"b_id": r.id, "b_volunteer": alias(r.volunteer)} for r in event_rows])
    # Volunteers: rename in two steps (a real name could equal a pseudonym) and revoke.
    for r in vol_rows:
        placeholder = hashlib.sha256(f"purging:{r.id}".encode()).hexdigest()
        conn.execute(v_t.update().where(v_t.c.id == r.id).values(name=placeholder,
                                                                  token_hash=placeholder))
    for r in vol_rows:
        version = r.token_version + 1
        new_name = alias(r.name)
        conn.execute(v_t.update().where(v_t.c.id == r.id).values(
            name=new_name, idx=None, token_version=version, revoked_at=now,
            token_hash=hashlib.sha256(token(batch_id, new_name, version).encode()).hexdigest()))
    conn.execute(update(c_t).where(and_(c_t.c.household_id.in_(in_batch),
                                        c_t.c.revoked_at.is_(None)))
                 .values(revoked_at=now, reason="purge"))
    conn.execute(S.batches.update().where(S.batches.c.id == batch_id)
                 .values(purged_at=now, updated_at=now))
    # the names of its files are the households' and the volunteers', and a reprint plan
    # lists the households' ids from the list
    written.forget(conn, batch_id)
    conn.execute(S.meta.delete().where(S.meta.c.key == reprint_key(batch_id)))
    return len(ids)
