"""Registering a batch and its households in the ledger (``build`` and re-``build``).

Households are matched by recipient id (the list's ``id`` column):

- same id and same name: the household keeps its code (slips already printed
  keep working) and its events; its snapshot (order, address, phone...) is updated;
- same id with another name: a warning (``id_reused``), and a new household
  with a new code; the old one is withdrawn and keeps its events, so a
  renumbered list never hands one household's code to another;
- a new id: a new household with a new code;
- an id no longer listed: the household is withdrawn (never deleted); listed
  again later, it comes back with its code.

Runs inside the write transaction that :meth:`letterpress.ledger.Ledger.register_batch` opens.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Sequence, Tuple, TypeVar

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.engine import Connection

from letterpress.errors import LedgerError, Problem, Where, warning
from letterpress.i18n import _
from letterpress.ledger import codes as codes_mod
from letterpress.ledger import schema as S
from letterpress.models import BatchInfo, Household, Volunteer
from letterpress.packed import Coded

#: ``token(batch_id, volunteer name, token version)`` -> badge token.
TokenFn = Callable[[int, str, int], str]


@dataclass(frozen=True)
class Registration:
    """What :meth:`letterpress.ledger.Ledger.register_batch` did.

    ``households`` are the input households with ``code`` (printed form) and
    ``url`` filled in; ``volunteers`` have their badge token and URL, in order
    of first appearance (no entry for unassigned households).
    """

    batch_id: int
    households: Sequence[Household]     # a read-only list (letterpress.packed.Coded)
    volunteers: Tuple[Volunteer, ...]
    new: int = 0            # households that got a new code
    kept: int = 0           # households that kept their code
    withdrawn: int = 0      # households no longer on the list, now withdrawn
    returned: int = 0       # withdrawn households back on the list (they keep their code)
    warnings: Tuple[Problem, ...] = ()


def token_hash(token: str) -> str:
    """What the ledger keeps of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def check_ids(households: Sequence[Household]) -> None:
    """Every household has an id of its own (:class:`LedgerError` otherwise)."""
    seen: Dict[str, int] = {}     # id -> No. (a district's households are not held)
    for h in households:
        if not str(h.id).strip():
            raise LedgerError(_("household No. %(seq)s has no id", seq=h.seq), code="missing_id",
                              where=Where(row=h.recipient.row))
        if h.id in seen:
            raise LedgerError(_("the id %(id)r appears twice (No. %(seq)s and No. %(seq2)s)",
                                id=h.id, seq=seen[h.id], seq2=h.seq), code="duplicate_id",
                              where=Where(row=h.recipient.row),
                              hint=_("give every household its own id"))
        seen[h.id] = h.seq


def upsert_batch(conn: Connection, info: BatchInfo, base_url: str, now: _dt.datetime) -> int:
    """The id of the batch called ``info.title``, made or updated."""
    b = S.batches
    row = conn.execute(select(b).where(b.c.title == info.title)).first()
    values = dict(org=info.org, date=info.date, lang=info.lang, base_url=base_url,
                  updated_at=now)
    if row is None:
        return conn.execute(b.insert().values(title=info.title, created_at=now, **values)
                            .returning(b.c.id)).scalar_one()
    if row.purged_at is not None:
        raise LedgerError(_("the batch %(title)r was purged on %(date)s", title=info.title,
                            date=row.purged_at.strftime("%Y-%m-%d")),
                          code="batch_purged", hint=_("give the new round another title"))
    conn.execute(b.update().where(b.c.id == row.id).values(**values))
    return row.id


def fresh_codes(conn: Connection, n: int) -> List[str]:
    """``n`` new canonical codes in the order drawn, none already in the ledger (collisions:
    rare, not impossible)."""
    out: List[str] = []
    while len(out) < n:
        drawn = list(dict.fromkeys(codes_mod.new_canonical() for _ in range(n - len(out))))
        taken = set(out)
        for i in range(0, len(drawn), 500):
            taken.update(conn.execute(select(S.codes.c.code)
                                      .where(S.codes.c.code.in_(drawn[i:i + 500]))).scalars())
        out.extend(code for code in drawn if code not in taken)
    return out


#: Rows per statement when a batch's households are written: the parameters of a whole
#: district at once would take more memory than everything else the build holds.
CHUNK = 2000

T = TypeVar("T")


def _chunks(items: List[T]) -> Iterator[List[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _snapshot(h: Household, prefix: str = "b_") -> dict:
    return {prefix + f: str(getattr(h.recipient, f) or "") for f in S.SNAPSHOT_FIELDS}


def register(conn: Connection, batch_id: int, items: Sequence[Household], base_url: str,
             now: _dt.datetime, token: TokenFn) -> Registration:
    """Match ``items`` with the batch's households, give codes, sync volunteers."""
    h_t, c_t = S.households, S.codes
    rows = conn.execute(select(h_t.c.id, h_t.c.household_key, h_t.c.name, h_t.c.seq,
                               h_t.c.withdrawn_at).where(h_t.c.batch_id == batch_id)
                        .order_by(h_t.c.id.desc())).all()
    by_key: Dict[str, list] = {}
    for r in rows:
        by_key.setdefault(r.household_key, []).append(r)
    current: Dict[int, str] = {}
    for hid, code in conn.execute(select(c_t.c.household_id, c_t.c.code)
                                  .join(h_t, h_t.c.id == c_t.c.household_id)
                                  .where(and_(h_t.c.batch_id == batch_id,
                                              c_t.c.revoked_at.is_(None)))
                                  .order_by(c_t.c.issued_at)).all():
        current[hid] = code
    matched: Dict[int, int] = {}           # input position -> households.id
    fresh: List[int] = []                  # input positions that need a new household
    warnings: List[Problem] = []
    kept = returned = 0
    for pos, h in enumerate(items):
        candidates = by_key.get(h.id, [])
        match = next((r for r in candidates if _same_name(r.name, h.name)), None)
        if match is None:
            if candidates:
                old = candidates[0]
                warnings.append(warning(
                    "id_reused",
                    _("id %(id)r was %(name)r (No. %(seq)s) when the batch was registered "
                      "before and is now %(name2)r (No. %(seq2)s): treated as a new household "
                      "with a new code",
                      id=h.id, name=old.name, seq=old.seq, name2=h.name, seq2=h.seq),
                    Where(row=h.recipient.row, column="id"),
                    hint=_("the slip of %(name)r no longer works; if this is the same "
                           "household, write its name as before", name=old.name)))
            fresh.append(pos)
            continue
        matched[pos] = match.id
        if match.withdrawn_at is not None:
            returned += 1
        else:
            kept += 1
    if matched:   # snapshot of the households still listed; the returned ones come back
        upd = update(h_t).where(h_t.c.id == bindparam("b_id")).values(
            seq=bindparam("b_seq"), updated_at=now, withdrawn_at=None,
            **{f: bindparam("b_" + f) for f in S.SNAPSHOT_FIELDS})
        for part in _chunks(list(matched.items())):
            conn.execute(upd, [dict(_snapshot(items[pos]), b_id=hid, b_seq=items[pos].seq)
                               for pos, hid in part])
    still = set(matched.values())
    gone = [r.id for r in rows if r.id not in still and r.withdrawn_at is None]
    for part in _chunks(gone):
        conn.execute(update(h_t).where(h_t.c.id == bindparam("b_id"))
                     .values(withdrawn_at=now, updated_at=now), [{"b_id": i} for i in part])
    # Each household's canonical code by its place in the list; new codes are made and
    # written a chunk at a time, so a district's are never all pending at once.
    code_at: List[str] = [""] * len(items)
    for pos, hid in matched.items():
        code_at[pos] = current.get(hid, "")
    current.clear()

    def give(pairs: List[Tuple[int, int]]) -> None:
        """New codes for ``(position, households.id)`` pairs (one chunk)."""
        made = fresh_codes(conn, len(pairs))
        conn.execute(c_t.insert(), [dict(code=code, household_id=hid, issued_at=now, reason="")
                                    for (_pos, hid), code in zip(pairs, made)])
        for (pos, _hid), code in zip(pairs, made):
            code_at[pos] = code

    for part in _chunks([(pos, hid) for pos, hid in matched.items() if not code_at[pos]]):
        give(part)
    for chunk in _chunks(fresh):
        ids = conn.execute(
            h_t.insert().returning(h_t.c.id, sort_by_parameter_order=True),
            [dict(_snapshot(items[pos], prefix=""), batch_id=batch_id,
                  household_key=items[pos].id, seq=items[pos].seq, created_at=now,
                  updated_at=now) for pos in chunk]).scalars().all()
        give(list(zip(chunk, ids)))
    out = Coded(items, code_at, base_url)
    vols = sync_volunteers(conn, batch_id, items, base_url, now, token)
    return Registration(batch_id, out, vols, new=len(fresh), kept=kept, withdrawn=len(gone),
                        returned=returned, warnings=tuple(warnings))


def sync_volunteers(conn: Connection, batch_id: int, items: Sequence[Household],
                    base_url: str, now: _dt.datetime, token: TokenFn) -> Tuple[Volunteer, ...]:
    """Volunteers of the list in order of first appearance; those no longer listed go off it."""
    v_t = S.volunteers
    names: List[str] = list(dict.fromkeys(h.volunteer for h in items if h.volunteer))
    existing = {r.name: r for r in conn.execute(select(v_t).where(v_t.c.batch_id == batch_id))}
    out = []
    for idx, name in enumerate(names, start=1):
        row = existing.get(name)
        version = row.token_version if row is not None else 1
        if row is not None and row.idx is None:
            version += 1        # back on the list: a new badge, never the old one again
        value = token(batch_id, name, version)
        if row is None:
            conn.execute(v_t.insert().values(batch_id=batch_id, name=name, idx=idx,
                                             token_version=1, token_hash=token_hash(value),
                                             created_at=now))
        elif row.idx is None:
            conn.execute(v_t.update().where(v_t.c.id == row.id).values(
                idx=idx, token_version=version, token_hash=token_hash(value)))
        elif row.token_hash != token_hash(value):
            # Revoked by staff (``letterpress volunteers revoke``): no badge on the run
            # sheet until ``volunteers reissue`` gives a new one.
            if row.idx != idx:
                conn.execute(v_t.update().where(v_t.c.id == row.id).values(idx=idx))
            out.append(Volunteer(idx, name))
            continue
        elif row.idx != idx:
            conn.execute(v_t.update().where(v_t.c.id == row.id).values(idx=idx))
        out.append(Volunteer(idx, name, value, codes_mod.badge_url(base_url, value)))
    off = [r.id for n, r in existing.items() if n not in names and r.idx is not None]
    if off:
        conn.execute(v_t.update().where(v_t.c.id.in_(off)).values(idx=None))
    return tuple(out)
