"""Small SQL reads for the staff pages that stay fast at 100,000 households.

Counts come from :mod:`letterpress.ledger.livetally`; these fetch the few rows a
page shows: recent events (newest first, stopping after ``limit``), full views
of a few households, and their numbers and names.
"""
from __future__ import annotations

from typing import Dict, List

from sqlalchemy import and_, select

from letterpress.ledger.schema import events, households
from letterpress.ledger.views import event_record


def recent_events(conn, batch_id: int, limit: int = 300) -> list:
    """A batch's most recent ``limit`` events, every flagged duplicate and every undo,
    newest first (as :func:`letterpress.ledger.views.events_for_batch`), reading events
    newest first and stopping early rather than gathering the whole batch first."""
    batch_of = (select(households.c.batch_id).where(households.c.id == events.c.household_id)
                .scalar_subquery())
    mine = batch_of == batch_id
    recent = conn.execute(select(events).where(mine).order_by(events.c.id.desc())
                          .limit(limit)).all()
    flagged = conn.execute(select(events).where(and_(events.c.duplicate.is_(True), mine))).all()
    undos = conn.execute(select(events).where(and_(events.c.kind == "undo", mine))).all()
    undone = {r.undoes_event_id for r in undos}
    rows = {r.id: r for r in (*recent, *flagged, *undos)}
    return [event_record(r, r.id in undone)
            for r in sorted(rows.values(), key=lambda r: r.id, reverse=True)]


def household_views(conn, ids: List[int]) -> list:
    """Full views (with events) of a few households, in the order of ``ids``."""
    from letterpress.ledger import views

    return [views.household_view(conn, hid) for hid in ids]


def seq_and_names(conn, ids) -> Dict[int, tuple]:
    """``{id: (seq, name)}`` of the households ``ids`` (for event lists)."""
    h = households
    ids = sorted(set(ids))
    out: Dict[int, tuple] = {}
    for start in range(0, len(ids), 500):
        for r in conn.execute(select(h.c.id, h.c.seq, h.c.name)
                              .where(h.c.id.in_(ids[start:start + 500]))).all():
            out[r.id] = (r.seq, r.name)
    return out


def failed_rows(conn, ids: List[int]) -> list:
    """Views of a few households (in the order of ``ids``) in two queries, for lists of
    failed households at any batch size."""
    from letterpress.ledger import views

    if not ids:
        return []
    found = {r.id: r for r in conn.execute(select(households).where(households.c.id.in_(ids)))}
    evs: Dict[int, list] = {}
    for r in conn.execute(select(events).where(events.c.household_id.in_(ids))
                          .order_by(events.c.id)):
        evs.setdefault(r.household_id, []).append(r)
    return [views.view(found[i], "", views.with_undone(evs.get(i, ()))) for i in ids
            if i in found]
