"""Households by state, counted and chosen by the database.

The rule of :func:`letterpress.ledger.views.derive_state` written as SQL, so a
district's status, dashboard and lists are a few grouped queries instead of
every household and event read into Python:

- ``withdrawn`` when ``withdrawn_at`` is set;
- else ``delivered`` when an outcome event not undone is a delivery
  (``delivered`` or ``proxy``);
- else ``failed`` when any outcome event is not undone (the latest of them is
  then a failure);
- else ``outstanding``.

The events of a batch's households are grouped once (``ix_events_household_id``
and the unique index of ``undoes_event_id`` serve the join and the "not
undone" test); households are read through ``ix_households_batch_key``.
``tests/test_ledger.py`` checks these counts against ``derive_state`` on
histories with undos, duplicates and withdrawn households, on SQLite and
PostgreSQL.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from letterpress.choices import DELIVERED_OUTCOMES
from letterpress.ledger.schema import events, households

STATES = ("delivered", "failed", "outstanding", "withdrawn")


def _live(batch_id: int):
    """One row per household of the batch with an outcome not undone: (hid, delivered 0/1)."""
    e, u, h = events, events.alias("u"), households
    undone = select(u.c.undoes_event_id).where(and_(u.c.kind == "undo",
                                                     u.c.undoes_event_id.is_not(None)))
    is_delivery = case((e.c.outcome.in_(sorted(DELIVERED_OUTCOMES)), 1), else_=0)
    return (select(e.c.household_id.label("hid"), func.max(is_delivery).label("delivered"))
            .join(h, h.c.id == e.c.household_id)
            .where(and_(h.c.batch_id == batch_id, e.c.kind == "outcome", e.c.id.not_in(undone)))
            .group_by(e.c.household_id)
            .subquery("live"))


def _with_state(batch_id: int):
    """(households joined to their live outcomes, the state column)."""
    live = _live(batch_id)
    h = households
    state = case((h.c.withdrawn_at.is_not(None), "withdrawn"),
                 (live.c.delivered == 1, "delivered"),
                 (live.c.hid.is_not(None), "failed"),
                 else_="outstanding").label("state")
    return h.outerjoin(live, live.c.hid == h.c.id), state


Groups = List[Tuple[str, Dict[str, int]]]


def grouped(conn: Connection, batch_id: int, column: str) -> Tuple[Dict[str, int], Groups]:
    """Counts by state for the whole batch, and per value of ``column`` of ``households``.

    The per-value counts leave withdrawn households out and come in order of
    first appearance in delivery order (values that differ only by spaces
    around them are one). Returns ``(totals, [(value, {"households", state: n})])``.
    """
    totals, (groups,) = grouped_by(conn, batch_id, (column,))
    return totals, groups


def grouped_by(conn: Connection, batch_id: int, columns: Sequence[str]
               ) -> Tuple[Dict[str, int], List[Groups]]:
    """:func:`grouped` for several columns at once, from ONE grouped query (the staff
    dashboard's volunteers and compounds): ``(totals, [groups of each column])``."""
    joined, state = _with_state(batch_id)
    h = households
    keys = [h.c[column].label(f"k{i}") for i, column in enumerate(columns)]
    first = func.min(case((h.c.withdrawn_at.is_(None), h.c.seq), else_=None))
    rows = conn.execute(select(*keys, state, func.count().label("n"), first.label("first"))
                        .select_from(joined).where(h.c.batch_id == batch_id)
                        .group_by(*[h.c[c] for c in columns], state)).all()
    totals = {s: 0 for s in STATES}
    for r in rows:
        totals[r.state] += r.n
    return totals, [_per_value(rows, i) for i in range(len(columns))]


def _per_value(rows, index: int) -> Groups:
    groups: Dict[str, Dict[str, int]] = {}
    order: Dict[str, int] = {}
    for r in rows:
        if r.state == "withdrawn":
            continue
        name = (r[index] or "").strip()
        entry = groups.setdefault(name, {"households": 0, "delivered": 0, "failed": 0,
                                         "outstanding": 0})
        entry["households"] += r.n
        entry[r.state] += r.n
        order[name] = min(order.get(name, r.first), r.first)
    return [(name, groups[name]) for name in sorted(groups, key=order.__getitem__)]


def chunks(ids: Sequence[int], size: int = 500):
    """``ids`` in pieces small enough for an ``IN (...)`` list on every database."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]
