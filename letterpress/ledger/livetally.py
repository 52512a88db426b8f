"""A batch's household states kept in memory and brought up to date from new events.

The staff pages must answer in well under a second for 100,000 households while
volunteers record outcomes. Reading every household and event on each page view
costs a few hundred milliseconds even as one SQL aggregate; instead a server
loads a batch once (one pass over its households and events), and on each view
reads only the events added since (a primary-key range), so a page costs a few
milliseconds of counting. Any change to the batch itself (a build again, a
purge: its ``updated_at``) loads it afresh. The states are those of
:func:`letterpress.ledger.views.derive_state`.

Event ids come from the database in commit order only roughly (PostgreSQL
sequences), so each refresh reads again a window of :data:`OVERLAP` ids before
the last one seen; applying an event twice changes nothing.
"""
from __future__ import annotations

import threading
from collections import Counter
from typing import Dict, List, Optional, Set, Tuple

from sqlalchemy import and_, select

from letterpress.choices import DELIVERED_OUTCOMES
from letterpress.ledger.schema import batches, events, households

#: Ids read again on each refresh, for events committed out of id order.
OVERLAP = 500
_STATES = ("delivered", "failed", "outstanding", "withdrawn")


class BatchTally:
    """The states of one batch's households (``refresh`` it inside a transaction)."""

    def __init__(self, batch_id: int) -> None:
        self.batch_id = batch_id
        self.version: object = None
        self.last_id = 0
        # household id -> (seq, volunteer, compound, withdrawn)
        self.households: Dict[int, Tuple[int, str, str, bool]] = {}
        self.outcomes: Dict[int, Dict[int, str]] = {}      # household -> {event id: outcome}
        self.undone: Set[int] = set()
        self.state: Dict[int, str] = {}
        self.order: List[int] = []                          # household ids by seq
        self.totals: Counter = Counter()
        # per volunteer (0) and per compound (1): name -> counts, kept up to date
        self.groups: Tuple[Dict[str, dict], Dict[str, dict]] = ({}, {})
        self.lock = threading.Lock()

    def refresh(self, conn) -> "BatchTally":
        with self.lock:
            version = conn.execute(select(batches.c.updated_at)
                                   .where(batches.c.id == self.batch_id)).scalar()
            if version != self.version:
                self._load(conn)
                self.version = version
            else:
                self._catch_up(conn)
        return self

    def _load(self, conn) -> None:
        h = households
        self.households = {r.id: (r.seq, r.volunteer, r.compound, r.withdrawn_at is not None)
                           for r in conn.execute(select(h.c.id, h.c.seq, h.c.volunteer,
                                                        h.c.compound, h.c.withdrawn_at)
                                                 .where(h.c.batch_id == self.batch_id))}
        self.outcomes, self.undone, self.last_id = {}, set(), 0
        rows = conn.execute(select(events.c.id, events.c.household_id, events.c.kind,
                                   events.c.outcome, events.c.undoes_event_id)
                            .join(h, h.c.id == events.c.household_id)
                            .where(h.c.batch_id == self.batch_id)).all()
        self._apply(rows)
        self.last_id = max([self.last_id] + [r.id for r in rows])
        self.state = {hid: self._derive(hid) for hid in self.households}
        self.order = sorted(self.households, key=lambda hid: self.households[hid][0])
        self.totals = Counter(self.state.values())
        self.groups = (self._grouped(0), self._grouped(1))

    def _catch_up(self, conn) -> None:
        rows = conn.execute(select(events.c.id, events.c.household_id, events.c.kind,
                                   events.c.outcome, events.c.undoes_event_id)
                            .where(events.c.id > self.last_id - OVERLAP)
                            .order_by(events.c.id)).all()
        if not rows:
            return
        self.last_id = max(self.last_id, rows[-1].id)
        for hid in self._apply(rows):
            old, new = self.state[hid], self._derive(hid)
            if old == new:
                continue
            self.state[hid] = new
            self.totals[old] -= 1
            self.totals[new] += 1
            if old != "withdrawn":
                _, volunteer, compound, _ = self.households[hid]
                for groups, name in zip(self.groups, (volunteer, compound)):
                    groups[name][old] -= 1
                    groups[name][new] += 1

    def _apply(self, rows) -> Set[int]:
        touched = set()
        for r in rows:
            if r.household_id not in self.households:
                continue
            if r.kind == "undo":
                self.undone.add(r.undoes_event_id)
            else:
                self.outcomes.setdefault(r.household_id, {})[r.id] = r.outcome
            touched.add(r.household_id)
        return touched

    def _derive(self, hid: int) -> str:
        if self.households[hid][3]:
            return "withdrawn"
        standing = [o for eid, o in self.outcomes.get(hid, {}).items() if eid not in self.undone]
        if any(o in DELIVERED_OUTCOMES for o in standing):
            return "delivered"
        return "failed" if standing else "outstanding"

    # --- what pages read ---------------------------------------------------------------

    def counts(self) -> Dict[str, int]:
        return dict({s: self.totals.get(s, 0) for s in _STATES}, households=len(self.state))

    def _grouped(self, field: int) -> Dict[str, dict]:
        groups: Dict[str, dict] = {}
        for hid in self.order:
            _, volunteer, compound, withdrawn = self.households[hid]
            if withdrawn:
                continue
            name = compound if field else volunteer
            g = groups.get(name)
            if g is None:
                g = groups[name] = {"name": name, "households": 0, "delivered": 0, "failed": 0,
                                    "outstanding": 0}
            g["households"] += 1
            g[self.state[hid]] += 1
        return groups

    def by_volunteer(self) -> List[dict]:
        """Named volunteers in order of first appearance, the unassigned last."""
        out = [dict(g) for g in self.groups[0].values()]
        return [v for v in out if v["name"]] + [v for v in out if not v["name"]]

    def by_compound(self) -> List[dict]:
        return [dict(g) for g in self.groups[1].values()]

    def ids(self, state: str, offset: int = 0, limit: Optional[int] = None) -> List[int]:
        """Household ids in ``state``, in delivery order, ``offset``/``limit`` applied."""
        state_of = self.state
        found = [hid for hid in self.order if state_of[hid] == state]
        end = None if limit is None else offset + limit
        return found[offset:end]


class Tallies:
    """One :class:`BatchTally` per batch, shared by a server's threads."""

    def __init__(self) -> None:
        self._tallies: Dict[int, BatchTally] = {}
        self._lock = threading.Lock()

    def of(self, ledger, batch_id: int) -> BatchTally:
        with self._lock:
            tally = self._tallies.setdefault(batch_id, BatchTally(batch_id))
        with ledger.transaction() as conn:
            return tally.refresh(conn)


def rows_of(conn, ids: List[int]) -> List[dict]:
    """Plain household rows of ``ids``, in that order (for lists of a page)."""
    if not ids:
        return []
    h = households
    got = {r.id: dict(r._mapping) for r in conn.execute(
        select(h.c.id, h.c.seq, h.c.name, h.c.honorific, h.c.address, h.c.volunteer, h.c.phone,
               h.c.notes).where(and_(h.c.id.in_(ids))))}
    return [got[i] for i in ids if i in got]


def recent_events(conn, batch_id: int, limit: int = 300) -> list:
    """What :func:`letterpress.ledger.views.events_for_batch` returns, read newest first and
    stopping after ``limit`` instead of gathering the batch's households first."""
    from letterpress.ledger.views import event_record

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
