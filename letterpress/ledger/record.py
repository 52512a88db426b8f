"""The rule of record: one plain function, one transaction, errors with stable codes.

:func:`record` takes a scanned or typed code, an outcome and who recorded it, and
appends one event; :func:`undo` appends an undo event. Nothing is ever updated
or deleted. Modelled on a check-in service: every refusal is a
:class:`RecordError` whose ``code`` callers map to messages and HTTP statuses:

``unknown_code``   malformed, wrong check symbol, or not in the ledger
``revoked_code``   the slip was reprinted; its new code works
``bad_outcome``    not one of :data:`letterpress.choices.OUTCOMES`
``note_required``  ``proxy`` and ``other`` need a note
``not_authorised`` the code belongs to another batch than the volunteer's (or, as
                   :class:`BadgeRefused`, the badge token is not accepted)
``withdrawn``      the household is no longer on the batch's list
``bad_nonce``      a nonce longer than the ledger keeps
``bad_text``       a note or nonce with a NUL character or a lone surrogate

A delivery recorded on a household already delivered is not an error: it is
recorded, flagged ``duplicate`` for staff review, and the result's status is
``already_delivered`` (the same for a failure outcome recorded after the
delivery). The same nonce twice gives the first event back with status
``repeated`` and records nothing.

Concurrency: the household's row is locked before deciding (``SELECT ... FOR
UPDATE`` on PostgreSQL; SQLite writers hold ``BEGIN IMMEDIATE``), so of several
simultaneous deliveries of one household exactly one is ``created``. Its events
are read by a statement of their own once the lock is held (on PostgreSQL a
statement sees what was committed before it began, so the statement that
waited for the lock must not be the one that reads them).

With ``badge`` (the JSON API), the volunteer's badge token is checked inside
the transaction that records, before anything else is decided: a badge revoked
a moment ago is refused by the very transaction that would have recorded. A
refused badge raises :class:`BadgeRefused` even when the rest is wrong too.

Speed (a district's volunteers post hundreds of events a second): the
statements are built once, here, and run through
:class:`letterpress.ledger.schema.Prepared` on the driver's cursor. A new event
is three statements in its transaction (the code with its household locked and
the badge's volunteer; the household's events together with any event of the
same nonce; the insert), a repeated nonce two; the result is put together after
the commit.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from sqlalchemy import bindparam, or_, select
from sqlalchemy.exc import IntegrityError

from letterpress.choices import NOTE_REQUIRED, OUTCOMES
from letterpress.errors import RecordError
from letterpress.i18n import _
from letterpress.ledger import badges
from letterpress.ledger import codes as codes_mod
from letterpress.ledger.schema import (
    MAX_NONCE,
    SOURCES,
    Prepared,
    as_utc,
    batches,
    codes,
    events,
    households,
    utcnow,
    volunteers,
)
from letterpress.ledger.views import (
    EventRecord,
    HouseholdView,
    active_code,
    derive_state,
    event_record,
    events_for,
    household_view,
    view,
    with_undone,
)

if TYPE_CHECKING:  # pragma: no cover
    from letterpress.ledger import Ledger

_badge_batch = batches.alias("badge_batch")
#: The code, its household (the row locked on PostgreSQL; SQLite writers hold the write
#: lock) and the volunteer of the badge token, if one is given.
_LOOKUP = Prepared(
    select(codes.c.revoked_at.label("code_revoked_at"), codes.c.reason.label("code_reason"),
           volunteers.c.batch_id.label("badge_batch_id"), volunteers.c.name.label("badge_name"),
           volunteers.c.token_version.label("badge_version"),
           volunteers.c.idx.label("badge_idx"),
           _badge_batch.c.purged_at.label("badge_purged_at"), households)
    .select_from(codes.join(households, households.c.id == codes.c.household_id)
                 .outerjoin(volunteers, volunteers.c.token_hash == bindparam("token_hash"))
                 .outerjoin(_badge_batch, _badge_batch.c.id == volunteers.c.batch_id))
    .where(codes.c.code == bindparam("code"))
    .with_for_update(of=households))
#: The household's events and the event of the nonce (whichever household it is on).
_EVENTS = Prepared(
    select(events)
    .where(or_(events.c.household_id == bindparam("household_id"),
               events.c.nonce == bindparam("nonce", type_=events.c.nonce.type)))
    .order_by(events.c.id))
_INSERT = Prepared(events.insert().returning(events.c.id),
                   column_keys=["household_id", "code", "kind", "outcome", "volunteer", "at",
                                "recorded_at", "nonce", "note", "undoes_event_id", "duplicate",
                                "source"])
_BY_NONCE = select(events).where(events.c.nonce == bindparam("nonce"))


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


def _checked(code: str, outcome: str, note: str, source: str, nonce: Optional[str]):
    """``(canonical code, outcome, note, nonce)`` cleaned, or a :class:`RecordError`."""
    canonical = codes_mod.canonical(code)
    outcome = str(outcome or "").strip().lower()
    if outcome not in OUTCOMES:
        raise RecordError(_("%(outcome)r is not an outcome", outcome=outcome), code="bad_outcome",
                          hint=_("use one of %(choices)s", choices=", ".join(OUTCOMES)))
    note = str(note or "").strip()
    if outcome in NOTE_REQUIRED and not note:
        if outcome == "proxy":
            message = _("the outcome %(outcome)r needs a note saying who received the package",
                        outcome=outcome)
        else:
            message = _("the outcome %(outcome)r needs a note saying what happened",
                        outcome=outcome)
        raise RecordError(message,
                          code="note_required", hint=_("add a note"))
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    nonce = str(nonce).strip() if nonce is not None else ""
    for name, value in (("note", note), ("nonce", nonce)):
        if "\x00" in value or not _encodable(value):
            raise RecordError(_("the %(field)s holds a character that cannot be stored (a NUL "
                                "character or a lone surrogate)", field=name), code="bad_text",
                              hint=_("send it as plain text"))
    if len(nonce) > MAX_NONCE:
        raise RecordError(_("the nonce is %(count)s characters long; at most %(max_nonce)s",
                            count=len(nonce), max_nonce=MAX_NONCE),
                          code="bad_nonce", hint=_("send a shorter unique id, such as a UUID"))
    return canonical, outcome, note, nonce


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def record(ledger: "Ledger", code: str, outcome: str, volunteer: Optional[str],
           at: Optional[_dt.datetime] = None, nonce: Optional[str] = None, note: str = "",
           source: str = "cli", batch_id: Optional[int] = None,
           badge: Optional[str] = None) -> RecordResult:
    """Record ``outcome`` for the household whose slip carries ``code``, in one transaction.

    ``at`` is when it happened (default now; a naive datetime is this machine's
    local time); ``nonce`` makes a re-sent record safe; ``batch_id``, when
    given, is the batch of the volunteer's badge. With ``badge`` (a badge
    token; ``volunteer`` and ``batch_id`` then None) the badge is checked first,
    in the same transaction, and gives the volunteer and the batch.
    Raises :class:`RecordError` (:class:`BadgeRefused` for a refused badge).
    """
    if badge is not None and (volunteer or batch_id is not None):
        raise ValueError("with a badge, the volunteer and the batch come from the badge")
    try:
        canonical, outcome, note, nonce = _checked(code, outcome, note, source, nonce)
    except RecordError:
        if badge is not None:
            ledger.authenticate(badge)      # who asks is answered first
        raise
    when = as_utc(at) if at is not None else utcnow()
    key = badges.key(badge) if badge is not None else None
    try:
        with ledger.transaction(write=True) as conn:
            finish = _record(ledger, conn, canonical, outcome, str(volunteer or "").strip(),
                             when, nonce or None, note, source, batch_id, badge, key)
        return finish()
    except IntegrityError:
        # Two records with one nonce raced (different households, so no common lock):
        # the unique constraint let one through; give that one back.
        if not nonce:
            raise
        with ledger.transaction() as conn:
            if badge is not None:
                batch_id, volunteer = badges.holder(conn, ledger.secret(), badge)
            row = conn.execute(_BY_NONCE, {"nonce": nonce}).first()
            if row is None:  # pragma: no cover - the constraint was another one
                raise
            return _repeated(conn, row, batch_id)


def _not_authorised() -> RecordError:
    return RecordError(_("this code belongs to another batch than your badge"),
                       code="not_authorised",
                       hint=_("scan the slips of your own batch, or ask staff for that badge"))


def _repeated(conn, row, batch_id: Optional[int]) -> RecordResult:
    """The event recorded earlier with the same nonce (never one of another batch)."""
    hv = household_view(conn, row.household_id)
    if batch_id is not None and hv.batch_id != batch_id:
        raise _not_authorised()
    ev = next(e for e in events_for(conn, row.household_id) if e.id == row.id)
    return RecordResult("repeated", row.id, ev, hv, hv.state)


def _record(ledger: "Ledger", conn, canonical: str, outcome: str, volunteer: str,
            when: _dt.datetime, nonce: Optional[str], note: str, source: str,
            batch_id: Optional[int], badge: Optional[str], key: Optional[str]
            ) -> Callable[[], RecordResult]:
    """Decide and write inside the transaction; the function returned puts the result
    together after the commit (the household stays locked no longer than needed)."""
    found = _LOOKUP.run(conn, {"code": canonical, "token_hash": key})
    hrow = found[0] if found else None
    if badge is not None:       # who asks comes first, then what is asked about
        if hrow is None:
            badges.holder(conn, ledger.secret(), badge)
        else:
            batch_id, volunteer = badges.check(
                ledger.secret(), badge, hrow.badge_batch_id, hrow.badge_name, hrow.badge_version,
                hrow.badge_idx, hrow.badge_purged_at)
    if hrow is None:
        raise RecordError(_("%(printed)s is not a code of this ledger",
                            printed=codes_mod.printed(canonical)),
                          code="unknown_code", hint=_(codes_mod.CODE_HINT))
    if batch_id is not None and hrow.batch_id != batch_id:
        raise _not_authorised()
    rows = _EVENTS.run(conn, {"household_id": hrow.id, "nonce": nonce})
    if nonce is not None:
        seen = next((r for r in rows if r.nonce == nonce), None)
        if seen is not None:
            if seen.household_id != hrow.id:      # the nonce was used for another code
                other = _repeated(conn, seen, batch_id)
                return lambda: other
            current = canonical if hrow.code_revoked_at is None else active_code(conn, hrow.id)

            def repeated() -> RecordResult:
                evs = with_undone(rows)
                hv = view(hrow, current, evs)
                ev = next(e for e in evs if e.id == seen.id)
                return RecordResult("repeated", seen.id, ev, hv, hv.state)
            return repeated
    if hrow.code_revoked_at is not None:
        raise RecordError(
            _("code %(code)s was replaced on %(date)s (%(reason)s)",
              code=codes_mod.printed(canonical), date=hrow.code_revoked_at.strftime("%Y-%m-%d"),
              reason=hrow.code_reason or _("revoked")),
            code="revoked_code", hint=_("use the household's new slip"))
    if hrow.withdrawn_at is not None:
        raise RecordError(
            _("household No. %(seq)s (code %(printed)s) was withdrawn from the batch's list",
              seq=hrow.seq, printed=codes_mod.printed(canonical)), code="withdrawn",
            hint=_("ask staff: the household is no longer on the list"))
    evs = with_undone(rows)
    before, _after = derive_state(False, evs)
    duplicate = before == "delivered"
    values = dict(household_id=hrow.id, code=canonical, kind="outcome", outcome=outcome,
                  volunteer=volunteer, at=when, recorded_at=utcnow(), nonce=nonce, note=note,
                  undoes_event_id=None, duplicate=duplicate, source=source)
    event_id = _INSERT.run(conn, values)[0].id

    def created() -> RecordResult:
        new = event_record(_Row(id=event_id, **values))
        hv = view(hrow, canonical, evs + [new])
        return RecordResult("already_delivered" if duplicate else "created", event_id, new,
                            hv, hv.state)
    return created


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
        raise RecordError(_("an undo needs a reason"), code="reason_required",
                          hint=_("say why the event is wrong, e.g. 'wrong household scanned'"))
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    try:
        with ledger.transaction(write=True) as conn:
            target = conn.execute(select(events).where(events.c.id == event_id)).first()
            if target is None:
                raise RecordError(_("the ledger has no event number %(event_id)s",
                                    event_id=event_id),
                                  code="unknown_event")
            hrow = conn.execute(select(households).where(households.c.id == target.household_id)
                                .with_for_update()).one()
            if target.kind != "outcome":
                raise RecordError(_("event %(event_id)s is itself an undo", event_id=event_id), code="cannot_undo",
                                  hint=_("record the outcome again instead"))
            evs = events_for(conn, hrow.id)
            if any(e.undoes_event_id == event_id for e in evs):
                raise RecordError(_("event %(event_id)s was already undone", event_id=event_id), code="already_undone")
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
        raise RecordError(_("event %(event_id)s was already undone", event_id=event_id), code="already_undone") from None
