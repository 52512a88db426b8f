"""The rule of record: one plain function, one transaction, errors with stable codes.

:func:`record` takes a scanned or typed code, an outcome and who recorded it, and
appends one event; :func:`undo` appends an undo event. Nothing is ever updated
or deleted. Modelled on a check-in service: every refusal is a
:class:`RecordError` whose ``code`` callers map to messages and HTTP statuses:

``unknown_code``   malformed, wrong check symbol, or not in the ledger
``revoked_code``   the slip was reprinted; its new code works
``bad_outcome``    not one of :data:`letterpress.models.OUTCOMES`
``note_required``  ``proxy`` and ``other`` need a note
``not_authorised`` the code belongs to another batch than the volunteer's
``withdrawn``      the household is no longer on the batch's list
``bad_nonce``      a nonce longer than the ledger keeps

A delivery recorded on a household already delivered is not an error: it is
recorded, flagged ``duplicate`` for staff review, and the result's status is
``already_delivered`` (the same for a failure outcome recorded after the
delivery). The same nonce twice gives the first event back with status
``repeated`` and records nothing.

Concurrency: the household's row is locked before deciding (``SELECT ... FOR
UPDATE`` on PostgreSQL; SQLite writers hold ``BEGIN IMMEDIATE``), so of several
simultaneous deliveries of one household exactly one is ``created``.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import codes as codes_mod
from .errors import LedgerError
from .ledger_schema import MAX_NONCE, SOURCES, as_utc, codes, events, households, utcnow
from .ledger_views import (EventRecord, HouseholdView, active_code, derive_state, event_record,
                           events_for, household_view, view)
from .models import NOTE_REQUIRED, OUTCOMES

if TYPE_CHECKING:  # pragma: no cover
    from .ledger import Ledger

_CODE_HINT = ("check the code printed under the QR code and type it again; its last symbol "
              "catches most typing mistakes")


class RecordError(LedgerError):
    """An event that cannot be recorded (or undone). ``code`` says why (see the module doc)."""

    code = "record_error"


@dataclass(frozen=True)
class RecordResult:
    """What :func:`record` or :func:`undo` did.

    ``status`` is ``created``, ``repeated`` (same nonce: nothing new recorded),
    ``already_delivered`` (recorded and flagged for review) or ``undone``.
    """

    status: str
    event_id: int
    event: EventRecord
    household: HouseholdView
    state: str              # the household's state after this

    @property
    def duplicate(self) -> bool:
        return self.event.duplicate


def _canonical(code: str) -> str:
    try:
        return codes_mod.normalise(code)
    except ValueError as exc:
        raise RecordError(f"{str(code).strip()!r} is not a household code: {exc}",
                          code="unknown_code", hint=_CODE_HINT) from None


def record(ledger: "Ledger", code: str, outcome: str, volunteer: str,
           at: Optional[_dt.datetime] = None, nonce: Optional[str] = None, note: str = "",
           source: str = "cli", batch_id: Optional[int] = None) -> RecordResult:
    """Record ``outcome`` for the household whose slip carries ``code``, in one transaction.

    ``at`` is when it happened (default now; a naive datetime is this machine's
    local time); ``nonce`` makes a re-sent record safe; ``batch_id``, when
    given, is the batch of the volunteer's badge. Raises :class:`RecordError`.
    """
    canonical = _canonical(code)
    outcome = str(outcome or "").strip().lower()
    if outcome not in OUTCOMES:
        raise RecordError(f"{outcome!r} is not an outcome", code="bad_outcome",
                          hint="use one of " + ", ".join(OUTCOMES))
    note = str(note or "").strip()
    if outcome in NOTE_REQUIRED and not note:
        what = "who received the package" if outcome == "proxy" else "what happened"
        raise RecordError(f"the outcome {outcome!r} needs a note saying {what}",
                          code="note_required", hint="add a note")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    nonce = str(nonce).strip() if nonce is not None else ""
    if len(nonce) > MAX_NONCE:
        raise RecordError(f"the nonce is {len(nonce)} characters long; at most {MAX_NONCE}",
                          code="bad_nonce", hint="send a shorter unique id, such as a UUID")
    when = as_utc(at) if at is not None else utcnow()
    try:
        with ledger.transaction(write=True) as conn:
            return _record(conn, canonical, outcome, str(volunteer or "").strip(), when,
                           nonce or None, note, source, batch_id)
    except IntegrityError:
        # Two records with one nonce raced (different households, so no common lock):
        # the unique constraint let one through; give that one back.
        if not nonce:
            raise
        with ledger.transaction() as conn:
            row = conn.execute(select(events).where(events.c.nonce == nonce)).first()
            if row is None:  # pragma: no cover - the constraint was another one
                raise
            return _repeated(conn, row, batch_id)


def _not_authorised() -> RecordError:
    return RecordError("this code belongs to another batch than your badge",
                       code="not_authorised",
                       hint="scan the slips of your own batch, or ask staff for that badge")


def _repeated(conn, row, batch_id: Optional[int]) -> RecordResult:
    """The event recorded earlier with the same nonce (never one of another batch)."""
    hv = household_view(conn, row.household_id)
    if batch_id is not None and hv.batch_id != batch_id:
        raise _not_authorised()
    ev = next(e for e in events_for(conn, row.household_id) if e.id == row.id)
    return RecordResult("repeated", row.id, ev, hv, hv.state)


def _record(conn, canonical: str, outcome: str, volunteer: str, when: _dt.datetime,
            nonce: Optional[str], note: str, source: str, batch_id: Optional[int]
            ) -> RecordResult:
    crow = conn.execute(select(codes).where(codes.c.code == canonical)).first()
    if crow is None:
        raise RecordError(f"{codes_mod.printed(canonical)} is not a code of this ledger",
                          code="unknown_code", hint=_CODE_HINT)
    # Lock the household before looking at its events: one decision at a time.
    hrow = conn.execute(select(households).where(households.c.id == crow.household_id)
                        .with_for_update()).one()
    if batch_id is not None and hrow.batch_id != batch_id:
        raise _not_authorised()
    if nonce is not None:
        row = conn.execute(select(events).where(events.c.nonce == nonce)).first()
        if row is not None:
            return _repeated(conn, row, batch_id)
    if crow.revoked_at is not None:
        raise RecordError(
            f"code {codes_mod.printed(canonical)} was replaced on "
            f"{crow.revoked_at:%Y-%m-%d} ({crow.reason or 'revoked'})",
            code="revoked_code", hint="use the household's new slip")
    if hrow.withdrawn_at is not None:
        raise RecordError(
            f"household No. {hrow.seq} (code {codes_mod.printed(canonical)}) was withdrawn "
            "from the batch's list", code="withdrawn",
            hint="ask staff: the household is no longer on the list")
    evs = events_for(conn, hrow.id)
    before, _ = derive_state(False, evs)
    duplicate = before == "delivered"
    now = utcnow()
    values = dict(household_id=hrow.id, code=canonical, kind="outcome", outcome=outcome,
                  volunteer=volunteer, at=when, recorded_at=now, nonce=nonce, note=note,
                  undoes_event_id=None, duplicate=duplicate, source=source)
    event_id = conn.execute(events.insert().values(**values).returning(events.c.id)).scalar_one()
    new = event_record(_Row(id=event_id, **values))
    hv = view(hrow, canonical, evs + [new])
    return RecordResult("already_delivered" if duplicate else "created", event_id, new, hv,
                        hv.state)


class _Row:
    """Attribute access over a dict, shaped like an ``events`` row."""

    def __init__(self, **values) -> None:
        self.__dict__.update(values)


def undo(ledger: "Ledger", event_id: int, reason: str, by: str,
         source: str = "cli") -> RecordResult:
    """Undo an outcome event (staff): append an ``undo`` event; the state is derived anew.

    Raises :class:`RecordError` with ``reason_required``, ``unknown_event``,
    ``cannot_undo`` (an undo event) or ``already_undone``.
    """
    reason = str(reason or "").strip()
    if not reason:
        raise RecordError("an undo needs a reason", code="reason_required",
                          hint="say why the event is wrong, e.g. 'wrong household scanned'")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    try:
        with ledger.transaction(write=True) as conn:
            target = conn.execute(select(events).where(events.c.id == event_id)).first()
            if target is None:
                raise RecordError(f"the ledger has no event number {event_id}",
                                  code="unknown_event")
            hrow = conn.execute(select(households).where(households.c.id == target.household_id)
                                .with_for_update()).one()
            if target.kind != "outcome":
                raise RecordError(f"event {event_id} is itself an undo", code="cannot_undo",
                                  hint="record the outcome again instead")
            evs = events_for(conn, hrow.id)
            if any(e.undoes_event_id == event_id for e in evs):
                raise RecordError(f"event {event_id} was already undone", code="already_undone")
            now = utcnow()
            values = dict(household_id=hrow.id, code=target.code, kind="undo",
                          outcome=target.outcome, volunteer=str(by or "").strip(), at=now,
                          recorded_at=now, nonce=None, note=reason, undoes_event_id=event_id,
                          duplicate=False, source=source)
            new_id = conn.execute(events.insert().values(**values)
                                  .returning(events.c.id)).scalar_one()
            new = event_record(_Row(id=new_id, **values))
            hv = view(hrow, active_code(conn, hrow.id), evs + [new])
            return RecordResult("undone", new_id, new, hv, hv.state)
    except IntegrityError:
        raise RecordError(f"event {event_id} was already undone", code="already_undone") from None
