"""The ledger's read-only questions: batches, status, households, rounds, events.

:class:`LedgerReads` is a part of :class:`letterpress.ledger.Ledger`: each method
opens a read transaction and asks :mod:`letterpress.ledger.views` (or, for counts
by state, :mod:`letterpress.ledger.counts`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ContextManager, Iterator, List, Optional, Sequence, Tuple

from sqlalchemy import select
from sqlalchemy.engine import Connection

from letterpress.errors import RecordError
from letterpress.i18n import _
from letterpress.ledger import codes as codes_mod
from letterpress.ledger import schema as S
from letterpress.ledger import views as V
from letterpress.ledger.views import BatchRecord, EventRecord, HouseholdView


class LedgerReads:
    """Questions answered from the ledger (mixed into :class:`~letterpress.ledger.Ledger`)."""

    if TYPE_CHECKING:  # pragma: no cover - provided by Ledger
        def transaction(self, write: bool = False) -> ContextManager[Connection]: ...

    def batches(self) -> List[BatchRecord]:
        """Every batch, oldest first."""
        with self.transaction() as conn:
            return V.list_batches(conn)

    def batch(self, batch_id: int) -> BatchRecord:
        """The batch with this id (``unknown_batch`` otherwise)."""
        with self.transaction() as conn:
            return V.get_batch(conn, batch_id)

    def find_batch(self, title: Optional[str] = None) -> BatchRecord:
        """The batch called ``title``; None means the only one (``batch_required`` otherwise)."""
        with self.transaction() as conn:
            return V.find_batch(conn, title)

    def status(self, title: Optional[str] = None) -> dict:
        """Counts by state per batch and volunteer (all batches, or the one called ``title``).

        Shape: ``{"batches": [{"title", "date", "households", "delivered",
        "failed", "outstanding", "withdrawn", "volunteers": [{"name",
        "households", "delivered", "failed", "outstanding"}]}]}``.
        """
        with self.transaction() as conn:
            return V.status(conn, title)

    def household_rows(self, batch_id: int) -> Iterator[HouseholdView]:
        """Every household of a batch, withdrawn ones too, in delivery order."""
        with self.transaction() as conn:
            rows = V.household_views(conn, batch_id)
        return iter(rows)

    def round(self, batch_id: int, volunteer: str) -> List[HouseholdView]:
        """A volunteer's households (not withdrawn) in walking order, with their states."""
        with self.transaction() as conn:
            return V.round_views(conn, batch_id, volunteer)

    def round_page(self, batch_id: int, volunteer: str) -> Tuple[BatchRecord, List[HouseholdView]]:
        """The batch and :meth:`round`, in one transaction (the volunteer's list page)."""
        with self.transaction() as conn:
            return V.get_batch(conn, batch_id), V.round_views(conn, batch_id, volunteer)

    def households_by_id(self, ids: Sequence[int]) -> List[HouseholdView]:
        """The views of these households (by ledger id), in the order given."""
        with self.transaction() as conn:
            return V.views_by_id(conn, ids)

    def household_by_code(self, code: str) -> HouseholdView:
        """The household a slip code belongs to (``unknown_code`` / ``revoked_code`` otherwise)."""
        canonical = codes_mod.canonical(code)
        with self.transaction() as conn:
            row = conn.execute(select(S.codes).where(S.codes.c.code == canonical)).first()
            if row is None:
                raise RecordError(_("%(printed)s is not a code of this ledger",
                                    printed=codes_mod.printed(canonical)),
                                  code="unknown_code", hint=_(codes_mod.CODE_HINT))
            if row.revoked_at is not None:
                raise RecordError(_("code %(printed)s was replaced",
                                    printed=codes_mod.printed(canonical)),
                                  code="revoked_code", hint=_("use the household's new slip"))
            return V.household_view(conn, row.household_id, canonical)

    def events_for(self, household_id: int) -> List[EventRecord]:
        """A household's events (undo events too) in the order they were recorded."""
        with self.transaction() as conn:
            return V.events_for(conn, household_id)

    def events_for_batch(self, batch_id: int, limit: int = 300) -> List[EventRecord]:
        """Recent events of a batch plus every duplicate and undo, newest first."""
        with self.transaction() as conn:
            return V.events_for_batch(conn, batch_id, limit)
