"""Reading the ledger: batches, household views with their derived state, events, status.

A household's state is derived from its events by :func:`derive_state`, the
one place that knows the rule (status, report, dashboard and the rule of record
all use it):

- ``withdrawn`` when the household is no longer on the batch's list;
- else ``delivered`` when any event not undone is ``delivered`` or ``proxy``
  (the first one recorded wins; later ones are flagged duplicates);
- else ``failed`` when the latest outcome not undone is a failure
  (not home, refused, hospital, other): it still needs a visit;
- else ``outstanding``.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from letterpress.choices import DELIVERED_OUTCOMES
from letterpress.errors import LedgerError
from letterpress.i18n import _
from letterpress.ledger import counts as C
from letterpress.ledger.schema import batches, codes, events, households


@dataclass(frozen=True)
class BatchRecord:
    """A batch as the ledger holds it."""

    id: int
    title: str
    date: Optional[_dt.date]
    org: str
    lang: str
    base_url: str
    created_at: _dt.datetime
    updated_at: _dt.datetime
    purged_at: Optional[_dt.datetime] = None


@dataclass(frozen=True)
class EventRecord:
    """One row of the append-only events table. ``code`` is in printed form."""

    id: int
    household_id: int
    code: str
    kind: str                   # "outcome" or "undo"
    outcome: str
    volunteer: str              # who recorded it (for an undo: who undid)
    at: _dt.datetime            # when it happened (aware, UTC)
    recorded_at: _dt.datetime   # when the ledger got it (aware, UTC)
    nonce: Optional[str]
    note: str                   # for an undo: the reason
    undoes_event_id: Optional[int]
    duplicate: bool             # recorded on a household already delivered: for review
    source: str
    undone: bool = False        # an undo event points at this one


@dataclass(frozen=True)
class HouseholdView:
    """A household with its current code and derived state (report, dashboard, web page)."""

    id: int
    batch_id: int
    seq: int
    key: str                    # the recipient id of the list
    name: str
    honorific: str
    address: str
    compound: str
    building: str
    unit: str
    room: str
    phone: str
    category: str
    grid: str
    volunteer: str              # assigned volunteer ("" unassigned)
    notes: str                  # the list's notes
    package: str
    code: str                   # printed form of the current code ("" when none is valid)
    state: str
    last_outcome: str = ""      # the winning delivery, else the latest outcome ("" if none)
    last_at: Optional[_dt.datetime] = None
    last_by: str = ""
    last_note: str = ""
    duplicates: int = 0         # outcome events flagged for review
    withdrawn_at: Optional[_dt.datetime] = None


def derive_state(withdrawn: bool, evs: Sequence[EventRecord]) -> Tuple[str, Optional[EventRecord]]:
    """The state of a household and the event that explains it (None when nothing counts).

    ``evs`` are the household's events in any order: :class:`EventRecord` or
    rows with ``id``, ``kind``, ``outcome``, ``at`` and ``undoes_event_id``.
    """
    undone = {e.undoes_event_id for e in evs if e.kind == "undo"}
    outcomes = sorted((e for e in evs if e.kind == "outcome" and e.id not in undone),
                      key=lambda e: e.id)
    delivered = [e for e in outcomes if e.outcome in DELIVERED_OUTCOMES]
    if delivered:
        state, last = "delivered", delivered[0]
    elif outcomes:
        state, last = "failed", max(outcomes, key=lambda e: (e.at, e.id))
    else:
        state, last = "outstanding", None
    return ("withdrawn" if withdrawn else state), last


def printed(canonical: str) -> str:
    """The printed form of a canonical code as stored in the ledger (no checking needed)."""
    return f"{canonical[:5]}-{canonical[5:10]}-{canonical[10:]}" if canonical else ""


def _batch(row) -> BatchRecord:
    return BatchRecord(row.id, row.title, row.date, row.org, row.lang, row.base_url,
                       row.created_at, row.updated_at, row.purged_at)


def list_batches(conn: Connection) -> List[BatchRecord]:
    """Every batch, oldest first."""
    return [_batch(r) for r in conn.execute(select(batches).order_by(batches.c.id))]


def get_batch(conn: Connection, batch_id: int) -> BatchRecord:
    row = conn.execute(select(batches).where(batches.c.id == batch_id)).first()
    if row is None:
        raise LedgerError(_("the ledger has no batch number %(batch_id)s", batch_id=batch_id), code="unknown_batch")
    return _batch(row)


def find_batch(conn: Connection, title: Optional[str]) -> BatchRecord:
    """The batch called ``title``; with None, the only batch of the ledger."""
    all_batches = list_batches(conn)
    titles = ", ".join(repr(b.title) for b in all_batches) or "none"
    if title is None:
        if len(all_batches) == 1:
            return all_batches[0]
        if not all_batches:
            raise LedgerError(_("the ledger holds no batch yet"), code="unknown_batch",
                              hint=_("run `letterpress build` first, or check --db"))
        raise LedgerError(_("the ledger holds %(count)s batches: %(titles)s",
                            count=len(all_batches), titles=titles),
                          code="batch_required", hint=_("say which one with --batch TITLE"))
    for b in all_batches:
        if b.title == title:
            return b
    raise LedgerError(_("the ledger has no batch %(title)r (batches: %(titles)s)",
                        title=title, titles=titles),
                      code="unknown_batch", hint=_("copy the title exactly, or check --db"))


def event_record(row, undone: bool = False) -> EventRecord:
    return EventRecord(row.id, row.household_id, printed(row.code), row.kind,
                       row.outcome, row.volunteer, row.at, row.recorded_at, row.nonce, row.note,
                       row.undoes_event_id, bool(row.duplicate), row.source, undone)


def with_undone(rows: Iterable) -> List[EventRecord]:
    """:class:`EventRecord` of ``events`` rows (one household's), marking the undone ones."""
    rows = list(rows)
    undone = {r.undoes_event_id for r in rows if r.kind == "undo"}
    return [event_record(r, r.id in undone) for r in rows]


def events_for(conn: Connection, household_id: int) -> List[EventRecord]:
    """A household's events in the order they were recorded."""
    rows = conn.execute(select(events).where(events.c.household_id == household_id)
                        .order_by(events.c.id))
    return with_undone(rows)


def events_for_batch(conn: Connection, batch_id: int, limit: int = 300) -> List[EventRecord]:
    """A batch's most recent ``limit`` events, every flagged duplicate and every undo,
    newest first (what the staff dashboard shows), in three queries."""
    base = select(events).where(events.c.household_id.in_(
        select(households.c.id).where(households.c.batch_id == batch_id)))
    recent = conn.execute(base.order_by(events.c.id.desc()).limit(limit)).all()
    marked = conn.execute(base.where(or_(events.c.duplicate.is_(True),
                                         events.c.kind == "undo"))).all()
    undone = {r.undoes_event_id for r in marked if r.kind == "undo"}
    rows = {r.id: r for r in (*recent, *marked)}
    return [event_record(r, r.id in undone)
            for r in sorted(rows.values(), key=lambda r: r.id, reverse=True)]


def view(row, code: str, evs: Sequence[EventRecord]) -> HouseholdView:
    """A :class:`HouseholdView` from a ``households`` row, its canonical code and its events."""
    state, last = derive_state(row.withdrawn_at is not None, evs)
    undone = {e.undoes_event_id for e in evs if e.kind == "undo"}
    dups = sum(1 for e in evs if e.kind == "outcome" and e.duplicate and e.id not in undone)
    return HouseholdView(
        row.id, row.batch_id, row.seq, row.household_key, row.name, row.honorific, row.address,
        row.compound, row.building, row.unit, row.room, row.phone, row.category, row.grid,
        row.volunteer, row.notes, row.package, printed(code), state,
        last.outcome if last else "", last.at if last else None, last.volunteer if last else "",
        last.note if last else "", dups, row.withdrawn_at)


def active_code(conn: Connection, household_id: int) -> str:
    """The household's current (not revoked) canonical code, or ""."""
    row = conn.execute(select(codes.c.code).where(and_(
        codes.c.household_id == household_id, codes.c.revoked_at.is_(None)))
        .order_by(codes.c.issued_at.desc())).first()
    return row.code if row else ""


def household_view(conn: Connection, household_id: int, code: Optional[str] = None
                   ) -> HouseholdView:
    """One household's view (``code`` canonical; its current code when None)."""
    row = conn.execute(select(households).where(households.c.id == household_id)).one()
    return view(row, code if code is not None else active_code(conn, household_id),
                events_for(conn, household_id))


def household_views(conn: Connection, batch_id: int) -> List[HouseholdView]:
    """Every household of a batch (withdrawn ones too) in delivery order."""
    rows = conn.execute(select(households).where(households.c.batch_id == batch_id)
                        .order_by(households.c.seq, households.c.id)).all()
    current: Dict[int, str] = {}
    for r in conn.execute(
            select(codes.c.household_id, codes.c.code)
            .join(households, households.c.id == codes.c.household_id)
            .where(and_(households.c.batch_id == batch_id, codes.c.revoked_at.is_(None)))
            .order_by(codes.c.issued_at)).all():
        current[r.household_id] = r.code
    by_household: Dict[int, list] = {}
    for r in conn.execute(
            select(events).join(households, households.c.id == events.c.household_id)
            .where(households.c.batch_id == batch_id).order_by(events.c.id)).all():
        by_household.setdefault(r.household_id, []).append(r)
    return [view(r, current.get(r.id, ""), with_undone(by_household.get(r.id, ())))
            for r in rows]


def _mine(batch_id: int, volunteer: str):
    h = households
    return and_(h.c.batch_id == batch_id, h.c.volunteer == volunteer, h.c.withdrawn_at.is_(None))


def round_select(batch_id: int, volunteer: str):
    """The query of a volunteer's households in walking order (``ix_households_round``)."""
    return select(households).where(_mine(batch_id, volunteer)) \
        .order_by(households.c.seq, households.c.id)


#: Households a query of :func:`round_views` names at most (SQLite's variable limit is 999
#: in old versions).
ROUND_CHUNK = 500


def round_statements(ids: Sequence[int]) -> tuple:
    """The queries of the current codes and the events of the households ``ids``.

    The ids are named (not a join or a subquery), so the database goes straight to the
    ``household_id`` indexes whatever its statistics say; rows are sorted here.
    """
    current = select(codes.c.household_id, codes.c.code, codes.c.issued_at).where(
        and_(codes.c.household_id.in_(list(ids)), codes.c.revoked_at.is_(None)))
    evs = select(events).where(events.c.household_id.in_(list(ids)))
    return current, evs


def round_views(conn: Connection, batch_id: int, volunteer: str) -> List[HouseholdView]:
    """The households of one volunteer of a batch (not withdrawn) in walking order.

    Each query goes through an index (``ix_households_round``, then the
    ``household_id`` indexes of codes and events), so the time follows the size
    of the round, not the size of the ledger.
    """
    rows = conn.execute(round_select(batch_id, volunteer)).all()
    code_rows: list = []
    event_rows: list = []
    for start in range(0, len(rows), ROUND_CHUNK):
        codes_q, events_q = round_statements([r.id for r in rows[start:start + ROUND_CHUNK]])
        code_rows += conn.execute(codes_q).all()
        event_rows += conn.execute(events_q).all()
    current: Dict[int, str] = {}
    for r in sorted(code_rows, key=lambda r: r.issued_at):
        current[r.household_id] = r.code
    by_household: Dict[int, list] = {}
    for r in sorted(event_rows, key=lambda r: r.id):
        by_household.setdefault(r.household_id, []).append(r)
    return [view(r, current.get(r.id, ""), with_undone(by_household.get(r.id, ())))
            for r in rows]


def batch_status(conn: Connection, batch: BatchRecord) -> dict:
    """One entry of :func:`status`'s ``batches`` list (counted by the database: see
    :mod:`letterpress.ledger.counts`)."""
    counts, per_volunteer = C.grouped(conn, batch.id, "volunteer")
    return status_entry(batch, counts, per_volunteer)


def status_entry(batch: BatchRecord, counts: Dict[str, int], per_volunteer: C.Groups) -> dict:
    """A :func:`batch_status` entry from counts already made."""
    named = [dict(entry, name=name) for name, entry in per_volunteer if name]
    unassigned = [dict(entry, name=name) for name, entry in per_volunteer if not name]
    key = ("name", "households", "delivered", "failed", "outstanding")
    return {
        "title": batch.title,
        "date": batch.date.isoformat() if batch.date else None,
        "households": sum(counts.values()),
        "delivered": counts["delivered"],
        "failed": counts["failed"],
        "outstanding": counts["outstanding"],
        "withdrawn": counts["withdrawn"],
        # Named volunteers in order of first appearance, the unassigned last (as the run sheets).
        "volunteers": [{k: e[k] for k in key} for e in named + unassigned],
    }


def views_by_id(conn: Connection, ids: Sequence[int]) -> List[HouseholdView]:
    """The views of these households, in the order of ``ids`` (a few queries per 500)."""
    found: Dict[int, HouseholdView] = {}
    for part in C.chunks(list(dict.fromkeys(ids))):
        rows = conn.execute(select(households).where(households.c.id.in_(part))).all()
        current: Dict[int, str] = {}
        for r in conn.execute(select(codes.c.household_id, codes.c.code)
                              .where(and_(codes.c.household_id.in_(part),
                                          codes.c.revoked_at.is_(None)))
                              .order_by(codes.c.issued_at)).all():
            current[r.household_id] = r.code
        by_household: Dict[int, list] = {}
        for r in conn.execute(select(events).where(events.c.household_id.in_(part))
                              .order_by(events.c.id)).all():
            by_household.setdefault(r.household_id, []).append(r)
        for r in rows:
            found[r.id] = view(r, current.get(r.id, ""), with_undone(by_household.get(r.id, ())))
    return [found[i] for i in ids if i in found]


def status(conn: Connection, title: Optional[str] = None) -> dict:
    """``{"batches": [...]}``: every batch, or only the one called ``title``."""
    chosen = [find_batch(conn, title)] if title is not None else list_batches(conn)
    return {"batches": [batch_status(conn, b) for b in chosen]}
