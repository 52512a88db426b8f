"""The ledger: the single source of truth after ``build`` (SQLAlchemy Core).

One :class:`Ledger` object wraps one database: a SQLite file by default
(:func:`default_url`), or PostgreSQL when several servers share it. It
registers batches and their households with codes, volunteers' badge tokens,
records events (:mod:`letterpress.ledger.record`), and answers status and report
questions (:mod:`letterpress.ledger.views`). Tables, schema versions and
migrations live in :mod:`letterpress.ledger.schema`.

Badge tokens are never stored in clear: a token is the URL-safe base64 (no
padding) of HMAC-SHA256(ledger secret, ``"{batch_id}:{name}:{version}"``),
256 bits, the same every time the batch is built again; revoking a badge bumps
the version, so the printed badge stops working and the next run sheet carries
a new one. The ledger keeps only a SHA-256 of each token to find it.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import secrets as _secrets
import threading
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from sqlalchemy import and_, inspect, select
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DatabaseError, OperationalError

from letterpress.errors import BadgeRefused, DiskFullError, LedgerError, RecordError
from letterpress.files import PRIVATE_FILE, free_bytes, make_private, private_dir
from letterpress.i18n import _
from letterpress.ledger import admin as A
from letterpress.ledger import badges, written
from letterpress.ledger import codes as codes_mod
from letterpress.ledger import record as R
from letterpress.ledger import schema as S
from letterpress.ledger import views as V
from letterpress.ledger.reading import LedgerReads
from letterpress.ledger.record import RecordResult
from letterpress.ledger.register import (
    Registration,
    check_ids,
    fresh_codes,
    register,
    token_hash,
    upsert_batch,
)
from letterpress.ledger.schema import default_url
from letterpress.ledger.views import (
    BatchRecord,
    EventRecord,
    HouseholdView,
    derive_state,
)
from letterpress.models import BatchInfo, Household, Volunteer

__all__ = ["Ledger", "Registration", "RecordError", "BadgeRefused", "RecordResult", "BatchRecord",
           "EventRecord", "HouseholdView", "default_url", "derive_state"]

class Ledger(LedgerReads):
    """A ledger database. Make one with :meth:`open`; :meth:`close` when done."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self.url = url
        self._sqlite = url.get_backend_name() == "sqlite"
        self._secret: Optional[bytes] = None
        # SQLite: this process's writers queue here, woken the moment the previous one
        # commits, instead of in SQLite's busy handler, which polls with growing sleeps
        # (up to 100 ms each). Other processes still wait in the busy handler.
        self._write_lock = threading.RLock() if self._sqlite else None

    # --- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: Optional[str] = None, create: bool = False) -> "Ledger":
        """Open the ledger at ``url`` (default :func:`default_url`), migrating an older schema.

        With ``create`` a missing ledger is made; without it a missing one is a
        :class:`LedgerError` with code ``no_ledger``. A ledger of a newer
        schema version raises ``ledger_too_new``.
        """
        parsed = S.parse_url(url)
        where = S.describe_url(parsed)
        path = S.sqlite_path(parsed)
        missing_hint = _("run `letterpress build` first, or check --db (or LETTERPRESS_DB)")
        if path is not None:
            if path.is_dir():
                raise LedgerError(_("%(path)s is a folder, not a ledger file", path=path), code="not_a_ledger",
                                  hint=_("give the path of the .db file with --db "
                                         "sqlite:///PATH"))
            if not path.exists():
                if not create:
                    raise LedgerError(_("there is no ledger at %(path)s", path=path), code="no_ledger",
                                      hint=missing_hint)
                try:
                    private_dir(path.parent)
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))  # owner-only
                except OSError as exc:
                    raise LedgerError(_("cannot make a ledger at %(path)s: %(strerror)s",
                                        path=path, strerror=exc.strerror),
                                      code="no_ledger",
                                      hint=_("give --db a path in a folder you can write to "
                                             "(sqlite:///PATH), or check that no file stands "
                                             "where a folder is needed")) from None
            for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
                make_private(name)    # SQLite gives -wal and -shm the mode of the ledger
        elif parsed.get_backend_name() == "sqlite" and not create:
            raise LedgerError(_("an in-memory ledger is always empty"), code="no_ledger",
                              hint=missing_hint)
        ledger = cls(S.make_engine(parsed), parsed)
        try:
            ledger._prepare(create, where, missing_hint)
            ledger.secret()     # read once, before any write transaction needs it
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _prepare(self, create: bool, where: str, missing_hint: str) -> None:
        with self.transaction() as conn:
            names = set(inspect(conn).get_table_names())
            version = S.read_version(conn) if "meta" in names else None
            has_secret = version is not None and conn.execute(
                select(S.meta.c.value).where(S.meta.c.key == "secret")).first() is not None
        if version == S.SCHEMA_VERSION and has_secret:
            return
        if version is None:
            if names & set(S.LEDGER_TABLES):
                raise LedgerError(_("%(where)s holds tables that are not a letterpress ledger",
                                    where=where),
                                  code="not_a_ledger", hint=_("use another database with --db"))
            if not create:
                raise LedgerError(_("%(where)s holds no ledger", where=where), code="no_ledger", hint=missing_hint)
            with self.transaction(write=True) as conn:
                if "meta" in set(inspect(conn).get_table_names()):  # created meanwhile
                    S.migrate(conn, where)
                else:
                    S.create(conn)
            return
        with self.transaction(write=True) as conn:
            S.migrate(conn, where)

    def describe(self) -> str:
        """Which ledger, in words: ``SQLite file output/letterpress.db``, never a password."""
        return S.describe_url(self.url)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self, write: bool = False) -> Iterator[Connection]:
        """A connection inside one transaction, committed at the end of the ``with`` block.

        ``write=True`` takes SQLite's write lock at the start (``BEGIN
        IMMEDIATE``), so concurrent writers wait their turn (up to the busy
        timeout) instead of failing half-way; writers of this process wait
        for each other on a lock of this object first, so they follow one
        another without SQLite's polling sleeps.
        """
        lock = self._write_lock if write else None
        if lock is not None and not lock.acquire(timeout=S.SQLITE_BUSY_TIMEOUT):
            raise LedgerError(_("%(describe)s: database is locked", describe=self.describe()), code="ledger_busy",
                              hint=_("another program is writing to the ledger; try again"))
        try:
            with self.engine.connect() as conn:
                if write and self._sqlite:
                    conn.execution_options(letterpress_write=True)
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            text = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
            busy = "locked" in text or "busy" in text
            folder = os.path.dirname(os.path.abspath(self.url.database or "")) or "."
            free = free_bytes(folder) if self._sqlite else None
            if self._sqlite and ("disk is full" in text or "disk I/O error" in text
                                 and free is not None and free < 1 << 20):
                raise DiskFullError(_("%(ledger)s: the disk holding %(folder)s is full; nothing "
                                      "was recorded", ledger=self.describe(), folder=folder),
                                    hint=_("free some space on that disk, then run the "
                                           "command again")) from None
            if busy:
                hint = _("another program is writing to the ledger; try again")
            elif self._sqlite:
                hint = _("check that the ledger file can be read and written, and --db")
            else:
                hint = _("check that the database server runs and that --db is right")
            raise LedgerError(_("%(describe)s: %(text)s", describe=self.describe(), text=text),
                              code="ledger_busy" if busy else "ledger_unreachable",
                              hint=hint) from None
        except DatabaseError as exc:
            if self._sqlite and "not a database" in str(exc):
                raise LedgerError(_("%(describe)s is not a SQLite database",
                                    describe=self.describe()),
                                  code="not_a_ledger", hint=_("check --db")) from None
            raise
        finally:
            if lock is not None:
                lock.release()

    def secret(self) -> bytes:
        """The ledger's signing secret (32 bytes, made once; shared by every server on it)."""
        if self._secret is None:
            with self.transaction() as conn:
                value = conn.execute(select(S.meta.c.value)
                                     .where(S.meta.c.key == "secret")).scalar_one()
            self._secret = bytes.fromhex(value)
        return self._secret

    # --- registering a batch -------------------------------------------------------------

    def register_batch(self, info: BatchInfo, households: Sequence[Household],
                       base_url: str) -> Registration:
        """Register (or register again) a batch and its households, in one transaction.

        Households are matched by recipient id: same id and same name keeps its
        code and events; an id that comes back with another name is warned about
        (``id_reused``) and becomes a new household with a new code; ids no
        longer listed are withdrawn (never deleted); a withdrawn household that
        is listed again comes back with its code.
        """
        base_url = base_url.rstrip("/")
        check_ids(households)
        now = S.utcnow()
        with self.transaction(write=True) as conn:
            batch_id = upsert_batch(conn, info, base_url, now)
            return register(conn, batch_id, households, base_url, now, self._token)

    def save_build_settings(self, batch_id: int, settings: dict) -> None:
        """Remember how a batch was built (template, output folder...), so that
        ``slips``, ``reprint`` and ``pdf`` can make its documents again from the ledger."""
        key = f"batch:{batch_id}:build"
        value = json.dumps(settings, ensure_ascii=False, sort_keys=True)
        with self.transaction(write=True) as conn:
            done = conn.execute(S.meta.update().where(S.meta.c.key == key)
                                .values(value=value)).rowcount
            if not done:
                conn.execute(S.meta.insert().values(key=key, value=value))

    def build_settings(self, batch_id: int) -> dict:
        """What :meth:`save_build_settings` kept for a batch ({} when nothing was kept)."""
        with self.transaction() as conn:
            value = conn.execute(select(S.meta.c.value).where(
                S.meta.c.key == f"batch:{batch_id}:build")).scalar()
        return json.loads(value) if value else {}

    def written_files(self, batch_id: int) -> Dict[str, List[str]]:
        """The files letterpress wrote (or was about to write) for a batch: output folder ->
        paths relative to it (see :mod:`letterpress.pipeline.outputs`)."""
        with self.transaction() as conn:
            return written.listed(conn, batch_id)

    def written_in(self, batch_id: int, folder: str) -> List[str]:
        """The batch's files in the output folder ``folder`` (resolved)."""
        with self.transaction() as conn:
            return written.in_folder(conn, batch_id, folder)

    def claim_files(self, batch_id: int, folder: str, planned: Iterable[str],
                    exists: Callable[[str], bool]) -> None:
        """Add ``planned`` to the batch's files in ``folder`` before they are written;
        those listed before that ``exists`` says are gone are dropped."""
        with self.transaction(write=True) as conn:
            written.claim(conn, batch_id, folder, planned, exists)

    def lock(self, title: str, names: Sequence[str] = (), what: str = "build"):
        """Lock a batch (and e.g. its output folder) while a command writes it; a
        :class:`letterpress.ledger.locks.BatchLock` to release (``with`` block).
        Raises :class:`LedgerError` ``batch_busy`` when another program holds it."""
        from letterpress.ledger import locks

        return locks.acquire(self, title, [f"batch:{title}", *names], what)

    # --- volunteers ----------------------------------------------------------------------

    def _token(self, batch_id: int, name: str, version: int) -> str:
        return badges.token(self.secret(), batch_id, name, version)

    def volunteers(self, batch_id: int, base_url: Optional[str] = None) -> List[Volunteer]:
        """The batch's volunteers on its current list, with badge tokens and URLs."""
        with self.transaction() as conn:
            batch = V.get_batch(conn, batch_id)
            rows = list(conn.execute(select(S.volunteers).where(and_(
                S.volunteers.c.batch_id == batch_id, S.volunteers.c.idx.is_not(None)))
                .order_by(S.volunteers.c.idx)))
        base = (base_url if base_url is not None else batch.base_url).rstrip("/")
        out = []
        for r in rows:
            if badges.state_of(self.secret(), r) != "active":
                out.append(Volunteer(r.idx, r.name))      # revoked: no badge to print
                continue
            token = self._token(batch_id, r.name, r.token_version)
            out.append(Volunteer(r.idx, r.name, token, codes_mod.badge_url(base, token)))
        return out

    def authenticate(self, token: str, batch_id: Optional[int] = None) -> Tuple[int, str]:
        """``(batch_id, volunteer name)`` of a badge token.

        Raises :class:`letterpress.ledger.record.BadgeRefused` (a :class:`RecordError`
        with code ``not_authorised``) for an unknown or revoked token, a
        volunteer no longer on the list, a purged batch, or (when ``batch_id``
        is given) a token of another batch.
        """
        with self.transaction() as conn:
            holder = badges.holder(conn, self.secret(), token)
        if batch_id is not None and holder[0] != batch_id:
            raise badges.refused()
        return holder

    def revoke_volunteer(self, batch_id: int, name: str) -> str:
        """Revoke a volunteer's badge: the printed one stops working. Returns the new token."""
        v_t = S.volunteers
        with self.transaction(write=True) as conn:
            row = conn.execute(select(v_t).where(and_(v_t.c.batch_id == batch_id,
                                                      v_t.c.name == name))).first()
            if row is None:
                raise LedgerError(_("batch %(batch_id)s has no volunteer %(name)r",
                                    batch_id=batch_id, name=name),
                                  code="unknown_volunteer")
            token = self._token(batch_id, name, row.token_version + 1)
            conn.execute(v_t.update().where(v_t.c.id == row.id).values(
                token_version=row.token_version + 1, token_hash=token_hash(token),
                revoked_at=S.utcnow()))
        return token

    def badge_states(self, batch_id: int) -> List["badges.BadgeState"]:
        """Every volunteer the batch has had and the state of their badge
        (``active``, ``revoked``, ``off_list``); see :mod:`letterpress.ledger.badges`."""
        with self.transaction() as conn:
            return badges.states(conn, self.secret(), batch_id)

    def revoke_badge(self, batch_id: int, name: str) -> "badges.BadgeState":
        """Stop a volunteer's badge at once (the next request with it is refused and phones
        logged in with it are logged out); no badge of theirs works until :meth:`reissue_badge`."""
        with self.transaction(write=True) as conn:
            return badges.revoke(conn, batch_id, name)

    def reissue_badge(self, batch_id: int, name: str,
                      base_url: Optional[str] = None) -> Volunteer:
        """A new badge for a volunteer on the list; every earlier badge of theirs stops working."""
        with self.transaction(write=True) as conn:
            idx, token = badges.reissue(conn, self.secret(), batch_id, name)
            batch = V.get_batch(conn, batch_id)
        base = (base_url if base_url is not None else batch.base_url).rstrip("/")
        return Volunteer(idx, name, token, codes_mod.badge_url(base, token))

    # --- staff login tokens --------------------------------------------------------------

    def new_staff_token(self, ttl: _dt.timedelta = _dt.timedelta(hours=12)) -> str:
        """A one-time staff login token valid for ``ttl``; only its hash is kept."""
        token = _secrets.token_urlsafe(32)
        now = S.utcnow()
        with self.transaction(write=True) as conn:
            conn.execute(S.staff_tokens.insert().values(
                token_hash=token_hash(token), created_at=now, expires_at=now + ttl))
        return token

    def use_staff_token(self, token: str) -> None:
        """Use a staff token (once). Raises :class:`RecordError` ``not_authorised`` otherwise."""
        t = S.staff_tokens
        now = S.utcnow()
        valid = and_(t.c.token_hash == token_hash(str(token or "")), t.c.used_at.is_(None),
                     t.c.expires_at > now)
        with self.transaction() as conn:        # a wrong token never opens a write transaction
            known = conn.execute(select(t.c.id).where(valid)).first() is not None
        done = 0
        if known:
            with self.transaction(write=True) as conn:
                done = conn.execute(t.update().where(valid).values(used_at=now)).rowcount
        if done != 1:
            raise RecordError(_("this staff link is unknown, used already or expired"),
                              code="not_authorised",
                              hint=_("start `letterpress serve` again for a new staff link"))

    # --- the rule of record (see letterpress.ledger.record) ---------------------------------------

    def record(self, code: str, outcome: str, volunteer: Optional[str],
               at: Optional[_dt.datetime] = None, nonce: Optional[str] = None, note: str = "",
               source: str = "cli", batch_id: Optional[int] = None,
               badge: Optional[str] = None) -> RecordResult:
        """Record an outcome for the household of ``code`` (:func:`letterpress.ledger.record.record`);
        with ``badge`` the badge token is checked in the same transaction."""
        return R.record(self, code, outcome, volunteer, at=at, nonce=nonce, note=note,
                        source=source, batch_id=batch_id, badge=badge)

    def undo(self, event_id: int, reason: str, by: str, source: str = "cli") -> RecordResult:
        """Undo an outcome event with a reason: see :func:`letterpress.ledger.record.undo`."""
        return R.undo(self, event_id, reason, by, source=source)

    # --- reprints and purging --------------------------------------------------------------

    def reissue_codes(self, batch_id: int, household_keys: Sequence[str]) -> Dict[str, str]:
        """New codes for these households (by recipient id); their old codes are revoked.

        Returns recipient id -> new code in printed form.
        """
        with self.transaction(write=True) as conn:
            return A.reissue_codes(conn, batch_id, list(household_keys), fresh_codes)

    def plan_reprint(self, batch_id: int, household_keys: Sequence[str],
                     folder: str) -> dict:
        """The new codes a reprint will give, set aside (not valid yet) until
        :meth:`commit_reprint`; see :func:`letterpress.ledger.admin.plan_reprint`."""
        with self.transaction(write=True) as conn:
            return A.plan_reprint(conn, batch_id, list(household_keys), folder, fresh_codes)

    def pending_reprint(self, batch_id: int) -> dict:
        """The plan of a reprint that was begun and not committed ({} when none)."""
        with self.transaction() as conn:
            return A.get_json(conn, A.reprint_key(batch_id)) or {}

    def commit_reprint(self, batch_id: int, plan: dict) -> Dict[str, str]:
        """Make a reprint's codes valid and revoke the old ones, in one transaction.
        Returns recipient id -> new code in printed form."""
        with self.transaction(write=True) as conn:
            done = A.reissue_codes(conn, batch_id, list(plan["codes"]), fresh_codes,
                                   chosen=plan["codes"])
            conn.execute(S.meta.delete().where(S.meta.c.key == A.reprint_key(batch_id)))
        return done

    def purge(self, batch_id: int) -> int:
        """Remove a batch's personal data, keeping its households, states and counts.

        Returns the number of households purged. See
        :func:`letterpress.ledger.admin.purge`.
        """
        with self.transaction(write=True) as conn:
            return A.purge(conn, batch_id, self._token)
