"""A batch's counts computed in SQL, for pages that must answer fast at 100,000 households.

The states are those of :func:`letterpress.ledger.views.derive_state`: withdrawn
first; else delivered when an outcome of :data:`DELIVERED_OUTCOMES` stands (not
undone); else failed when any other outcome stands; else outstanding.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from sqlalchemy import and_, case, exists, func, literal, select
from sqlalchemy.orm import aliased

from letterpress.choices import DELIVERED_OUTCOMES
from letterpress.ledger.schema import events, households

_KEYS = ("delivered", "failed", "outstanding", "withdrawn")


def _standing(batch_id: int):
    """Per household with a standing outcome: ``hid`` and ``anydel`` (1 when delivered)."""
    undo = aliased(events)
    e = events
    return (select(e.c.household_id.label("hid"),
                   func.max(case((e.c.outcome.in_(sorted(DELIVERED_OUTCOMES)), 1), else_=0))
                   .label("anydel"))
            .join(households, households.c.id == e.c.household_id)
            .where(and_(households.c.batch_id == batch_id, e.c.kind == "outcome",
                        ~exists().where(undo.c.undoes_event_id == e.c.id)))
            .group_by(e.c.household_id).subquery())


def _state_columns(h, x):
    live = h.c.withdrawn_at.is_(None)
    one = literal(1)
    return (func.count().label("households"),
            func.sum(case((h.c.withdrawn_at.is_not(None), one), else_=0)).label("withdrawn"),
            func.sum(case((and_(live, x.c.anydel == 1), one), else_=0)).label("delivered"),
            func.sum(case((and_(live, x.c.anydel == 0), one), else_=0)).label("failed"),
            func.sum(case((and_(live, x.c.hid.is_(None)), one), else_=0)).label("outstanding"))


def counts(conn, batch_id: int) -> Dict[str, int]:
    """``{"households", "delivered", "failed", "outstanding", "withdrawn"}`` of a batch."""
    h, x = households, _standing(batch_id)
    row = conn.execute(select(*_state_columns(h, x)).select_from(
        h.outerjoin(x, x.c.hid == h.c.id)).where(h.c.batch_id == batch_id)).one()
    return {k: int(getattr(row, k) or 0) for k in ("households",) + _KEYS}


def by_volunteer(conn, batch_id: int) -> List[dict]:
    """Counts per volunteer (withdrawn households left out), named ones first by name."""
    h, x = households, _standing(batch_id)
    rows = conn.execute(select(h.c.volunteer, *_state_columns(h, x)).select_from(
        h.outerjoin(x, x.c.hid == h.c.id)).where(and_(h.c.batch_id == batch_id,
                                                      h.c.withdrawn_at.is_(None)))
        .group_by(h.c.volunteer).order_by(func.min(h.c.seq))).all()
    out = [{"name": r.volunteer, "households": int(r.households), "delivered": int(r.delivered),
            "failed": int(r.failed), "outstanding": int(r.outstanding)} for r in rows]
    return [v for v in out if v["name"]] + [v for v in out if not v["name"]]


def outstanding_page(conn, batch_id: int, offset: int = 0,
                     limit: int = 50) -> Tuple[List[dict], int]:
    """One page of the households still to visit (delivery order) and how many there are."""
    h, x = households, _standing(batch_id)
    where = and_(h.c.batch_id == batch_id, h.c.withdrawn_at.is_(None), x.c.hid.is_(None))
    joined = h.outerjoin(x, x.c.hid == h.c.id)
    total = conn.execute(select(func.count()).select_from(joined).where(where)).scalar_one()
    rows = conn.execute(select(h.c.seq, h.c.name, h.c.address, h.c.volunteer, h.c.phone)
                        .select_from(joined).where(where).order_by(h.c.seq)
                        .offset(offset).limit(limit)).all()
    return [dict(r._mapping) for r in rows], int(total)
