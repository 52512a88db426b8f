"""The ledger's tables, its schema version and migrations, and engines for SQLite and PostgreSQL.

Only portable SQLAlchemy Core is used, so one schema and one set of queries
serve a SQLite file (the default) and a shared PostgreSQL database.

Schema versions
---------------
1. The first ledgers: ``meta``, ``batches``, ``households``, ``codes``,
   ``volunteers`` and ``events``, written by the command line only.
2. Adds ``events.source`` (where an event came from: ``web``, ``api``,
   ``cli`` or ``import``; version 1 events came from the command line),
   ``batches.purged_at`` (personal data removed) and the ``staff_tokens``
   table (one-time staff login links of ``letterpress serve``).
3. Adds the index ``ix_households_round`` on ``households (batch_id,
   volunteer, seq)``, so a volunteer's round is read without scanning a
   district's households; events may come from the source ``list`` (recorded
   from the volunteer's round list, for a household whose slip was lost).
4. Adds the ``written_files`` table: the files letterpress wrote for a batch,
   one row each (version 3 kept them as one JSON text in ``meta``, rewritten
   whole by every build: a district's 100,000 letters).

An older ledger is migrated step by step by :data:`MIGRATIONS`, in one
transaction; nothing is ever dropped or recreated. A ledger written by a newer
letterpress is refused.
"""
from __future__ import annotations

import datetime as _dt
import importlib.util
import secrets
import weakref
from collections import namedtuple
from pathlib import Path
from typing import Callable, Dict, Optional

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    select,
    text,
)
from sqlalchemy.engine import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from letterpress.errors import LedgerError
from letterpress.i18n import _

#: The schema version this letterpress writes.
SCHEMA_VERSION = 4
#: Default ledger, relative to the current folder.
DEFAULT_URL = "sqlite:///output/letterpress.db"
#: How long a SQLite writer waits for another one to finish (seconds).
SQLITE_BUSY_TIMEOUT = 10.0


def default_url() -> str:
    """The default ledger URL: the SQLite file ``output/letterpress.db`` in the current folder."""
    return DEFAULT_URL


def utcnow() -> _dt.datetime:
    """Now, timezone-aware, in UTC."""
    return _dt.datetime.now(_dt.timezone.utc)


def as_utc(value: _dt.datetime) -> _dt.datetime:
    """An aware UTC datetime; a naive one is taken as this machine's local time."""
    return value.astimezone(_dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """A point in time that always comes back timezone-aware, in UTC.

    PostgreSQL stores it as ``timestamp with time zone``; SQLite, which has no
    time zones, as naive UTC text in a fixed-width format that sorts by time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name != "postgresql":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - defensive, for hand-made rows
            value = _dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc)


metadata = MetaData()

meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

batches = Table(
    "batches", metadata,
    Column("id", Integer, primary_key=True),
    Column("title", Text, nullable=False, unique=True),
    Column("date", Date, nullable=True),
    Column("org", Text, nullable=False, default=""),
    Column("lang", String(8), nullable=False, default="zh"),
    Column("base_url", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("purged_at", UTCDateTime, nullable=True),                       # version 2
)

#: Recipient fields the ledger keeps a snapshot of (confirm, web page, report).
SNAPSHOT_FIELDS = ("name", "honorific", "address", "compound", "building", "unit", "room",
                   "phone", "category", "grid", "volunteer", "notes", "package")

households = Table(
    "households", metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("household_key", Text, nullable=False),      # the recipient id of the list
    Column("seq", Integer, nullable=False),
    *[Column(name, Text, nullable=False, default="") for name in SNAPSHOT_FIELDS],
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("withdrawn_at", UTCDateTime, nullable=True),
    Index("ix_households_batch_key", "batch_id", "household_key"),
    Index("ix_households_round", "batch_id", "volunteer", "seq"),         # version 3
)

codes = Table(
    "codes", metadata,
    Column("code", String(16), primary_key=True),       # canonical, 11 symbols
    Column("household_id", Integer, ForeignKey("households.id"), nullable=False, index=True),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=False, default=""),
)

volunteers = Table(
    "volunteers", metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("idx", Integer, nullable=True),      # order of first appearance; NULL: off the list
    Column("token_version", Integer, nullable=False, default=1),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the badge token
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),   # when a badge was last revoked
    UniqueConstraint("batch_id", "name", name="uq_volunteers_batch_name"),
)

#: Where an event came from (``list``: from the volunteer's round list, slip lost; version 3).
SOURCES = ("web", "api", "cli", "import", "list")
#: Longest nonce accepted.
MAX_NONCE = 200

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    Column("household_id", Integer, ForeignKey("households.id"), nullable=False, index=True),
    Column("code", String(16), ForeignKey("codes.code"), nullable=False),
    Column("kind", String(8), nullable=False),          # "outcome" or "undo"
    Column("outcome", String(16), nullable=False),
    Column("volunteer", Text, nullable=False, default=""),
    Column("at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("nonce", String(MAX_NONCE), nullable=True, unique=True),
    Column("note", Text, nullable=False, default=""),
    Column("undoes_event_id", Integer, ForeignKey("events.id"), nullable=True, unique=True),
    Column("duplicate", Boolean, nullable=False, default=False),
    Column("source", String(16), nullable=False, default="cli"),           # version 2
)

staff_tokens = Table(                                                        # version 2
    "staff_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

written_files = Table(                                                       # version 4
    "written_files", metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("folder", Text, nullable=False),         # the output folder, resolved
    Column("path", Text, nullable=False),           # relative to it, "/"-separated
    UniqueConstraint("batch_id", "folder", "path", name="uq_written_files"),
)

LEDGER_TABLES = ("meta", "batches", "households", "codes", "volunteers", "events")


# --- migrations ------------------------------------------------------------------------------

def _v1_to_v2(conn: Connection) -> None:
    """Version 1 -> 2: ``events.source``, ``batches.purged_at``, the ``staff_tokens`` table."""
    conn.execute(text("ALTER TABLE events ADD COLUMN source VARCHAR(16) NOT NULL DEFAULT 'cli'"))
    timestamp = UTCDateTime().impl.compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE batches ADD COLUMN purged_at {timestamp}"))
    # The table as version 2 defines it (a later version changes it in its own step).
    v2 = MetaData()
    Table(
        "staff_tokens", v2,
        Column("id", Integer, primary_key=True),
        Column("token_hash", String(64), nullable=False, unique=True),
        Column("created_at", UTCDateTime, nullable=False),
        Column("expires_at", UTCDateTime, nullable=False),
        Column("used_at", UTCDateTime, nullable=True),
    )
    v2.create_all(conn)


def _v2_to_v3(conn: Connection) -> None:
    """Version 2 -> 3: the index of volunteers' rounds (``source`` is free text: ``list``
    needs no change of the table)."""
    conn.execute(text("CREATE INDEX ix_households_round ON households (batch_id, volunteer, seq)"))


def _v3_to_v4(conn: Connection) -> None:
    """Version 3 -> 4: the ``written_files`` table, filled from the JSON lists version 3
    kept in ``meta`` (``batch:N:files``), which go; a purged batch's list (its files are
    deleted, and their names are the households') is not kept. The table made is version
    4's: a later version that changes it must make this shape here (as ``_v1_to_v2`` does)."""
    import json

    written_files.create(conn)
    listed = set(conn.execute(select(batches.c.id).where(batches.c.purged_at.is_(None)))
                 .scalars())
    found = conn.execute(select(meta.c.key, meta.c.value)
                         .where(meta.c.key.like("batch:%:files"))).all()
    for key, value in found:
        number = key.split(":")[1]
        batch_id = int(number) if number.isdigit() else 0
        try:    # a batch purged (or removed by hand) keeps no list
            lists = json.loads(value) if batch_id in listed else {}
        except ValueError:
            lists = {}
        rows = [{"batch_id": batch_id, "folder": folder, "path": path}
                for folder, paths in (lists.items() if isinstance(lists, dict) else ())
                for path in dict.fromkeys(p for p in paths if isinstance(p, str))]
        if rows:
            conn.execute(written_files.insert(), rows)
        conn.execute(meta.delete().where(meta.c.key == key))


#: ``MIGRATIONS[n]`` turns a version ``n`` ledger into version ``n + 1``.
MIGRATIONS: Dict[int, Callable[[Connection], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
}


def read_version(conn: Connection) -> int:
    """The schema version recorded in ``meta``."""
    row = conn.execute(meta.select().where(meta.c.key == "schema_version")).first()
    if row is None:
        raise LedgerError(_("the ledger has no schema version"), code="not_a_ledger",
                          hint=_("this database was not made by letterpress; check --db"))
    return int(row.value)


def _set_meta(conn: Connection, key: str, value: str) -> None:
    if conn.execute(meta.select().where(meta.c.key == key)).first() is None:
        conn.execute(meta.insert().values(key=key, value=value))
    else:
        conn.execute(meta.update().where(meta.c.key == key).values(value=value))


def migrate(conn: Connection, where: str) -> int:
    """Bring the ledger in ``conn`` (inside a write transaction) up to :data:`SCHEMA_VERSION`.

    Returns the version found. Raises :class:`LedgerError` for a newer version.
    """
    # Lock the version row (PostgreSQL; SQLite already holds the write lock).
    row = conn.execute(meta.select().where(meta.c.key == "schema_version")
                       .with_for_update()).first()
    found = int(row.value) if row is not None else read_version(conn)
    if found > SCHEMA_VERSION:
        raise LedgerError(
            _("%(where)s has ledger schema version %(found)s; this letterpress knows up to "
              "version %(schema_version)s", where=where, found=found, schema_version=SCHEMA_VERSION), code="ledger_too_new",
            hint=_("upgrade letterpress (the ledger was written by a newer one)"))
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](conn)
        _set_meta(conn, "schema_version", str(version + 1))
    if conn.execute(meta.select().where(meta.c.key == "secret")).first() is None:
        _set_meta(conn, "secret", secrets.token_hex(32))
    return found


def create(conn: Connection) -> None:
    """Create a new, empty ledger of the current version (inside a write transaction)."""
    metadata.create_all(conn)
    _set_meta(conn, "schema_version", str(SCHEMA_VERSION))
    _set_meta(conn, "secret", secrets.token_hex(32))


# --- statements run on the driver's cursor ------------------------------------------------------

class Prepared:
    """A Core statement compiled once per dialect and run on the driver's own cursor.

    For the few statements of a busy path (the rule of record): SQLAlchemy's
    execution layer costs about 80 microseconds a statement, the driver about 5.
    The SQL is Core's own compilation for the dialect, parameters and results
    go through the column types' processors (so values are what Core gives:
    aware datetimes, booleans), and driver errors come back as SQLAlchemy's
    (``IntegrityError``, ``OperationalError``...). It runs inside the
    transaction of the SQLAlchemy connection it is given. Only bind
    parameters given at run time (no literal values in the statement).
    """

    def __init__(self, stmt, column_keys: Optional[list] = None) -> None:
        self.stmt = stmt
        self.column_keys = column_keys
        self._plans: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # by dialect

    def _plan(self, dialect) -> tuple:
        plan = self._plans.get(dialect)
        if plan is None:
            compiled = self.stmt.compile(dialect=dialect, column_keys=self.column_keys)
            names = list(compiled.positiontup if dialect.positional else compiled.binds)
            binds = [(name, compiled.binds[name].type.dialect_impl(dialect)
                      .bind_processor(dialect)) for name in names]
            columns = [(c.key, c.type.dialect_impl(dialect).result_processor(dialect, None))
                       for c in self.stmt.exported_columns]     # SELECT or RETURNING
            row = namedtuple("Row", [k for k, _ in columns]) if columns else None
            plan = (str(compiled), binds, [p for _, p in columns], row, dialect.positional)
            self._plans[dialect] = plan
        return plan

    def run(self, conn: Connection, params: Optional[dict] = None) -> list:
        """The rows (named tuples) the statement gives, in ``conn``'s transaction."""
        sql, binds, processors, row, positional = self._plan(conn.dialect)
        params = params or {}
        values = [(name, proc(params[name]) if proc else params[name]) for name, proc in binds]
        dbapi = conn.dialect.loaded_dbapi
        raw = conn.connection.dbapi_connection
        assert raw is not None, "a connection in use has its DBAPI connection"
        cursor = raw.cursor()
        try:
            cursor.execute(sql, tuple(v for _, v in values) if positional else dict(values))
            if row is None:
                return []
            return [row(*[proc(v) if proc else v for proc, v in zip(processors, r)])
                    for r in cursor.fetchall()]
        except dbapi.Error as exc:
            raise DBAPIError.instance(sql, params, exc, dbapi.Error,
                                      dialect=conn.dialect) from exc
        finally:
            cursor.close()


# --- engines ---------------------------------------------------------------------------------

def parse_url(url: Optional[str]) -> URL:
    """A SQLAlchemy URL; ``postgresql://`` uses psycopg 3 when psycopg2 is not installed."""
    try:
        parsed = make_url(url or default_url())
    except Exception as exc:  # ArgumentError, ValueError
        raise LedgerError(_("%(url)r is not a database URL (%(exc)s)", url=url, exc=exc), code="bad_db_url",
                          hint=_("use sqlite:///path/to/letterpress.db or "
                                 "postgresql+psycopg://user@host/dbname")) from None
    if parsed.drivername in ("postgresql", "postgres") and \
            importlib.util.find_spec("psycopg2") is None:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_path(url: URL) -> Optional[Path]:
    """The file of a SQLite URL (None for other databases and for in-memory SQLite)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def describe_url(url: URL) -> str:
    """Which ledger, in words, never with a password."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _("SQLite file %(path)s", path=url.database) \
            if url.database not in (None, "", ":memory:") else _("SQLite in memory")
    if backend == "postgresql":
        if url.host:
            return _("PostgreSQL database %(name)s on %(host)s:%(port)s", name=url.database,
                     host=url.host, port=url.port or 5432)
        return _("PostgreSQL database %(name)s (local socket)", name=url.database)
    return f"{backend} database {url.database}"  # pragma: no cover


def make_engine(url: URL) -> Engine:
    """An engine with the ledger's connection settings.

    SQLite: WAL journal, foreign keys, a busy timeout, and transactions begun
    by letterpress itself (``BEGIN IMMEDIATE`` for writers, so concurrent
    writers queue instead of failing). ``synchronous = NORMAL``: in WAL mode
    a commit does not wait for the disk (a confirmation costs a tenth of a
    millisecond, not a flush); the file cannot be corrupted by a crash, but a
    power cut may lose the last commits before it (an application crash
    loses nothing).
    """
    if url.get_backend_name() != "sqlite":
        try:
            return create_engine(url, pool_pre_ping=True)
        except ImportError as exc:
            raise LedgerError(_("the database driver for %(drivername)s is not installed "
                                "(%(exc)s)", drivername=url.drivername, exc=exc),
                              code="missing_driver",
                              hint=_("pip install 'letterpress[postgres]' (psycopg 3)")) from None
    kwargs: dict = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}}
    if sqlite_path(url) is None:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)
    in_memory = sqlite_path(url) is None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every test
        dbapi_conn.isolation_level = None           # letterpress emits BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
        if not in_memory:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised by every test
        write = conn.get_execution_options().get("letterpress_write", False)
        sql = "BEGIN IMMEDIATE" if write else "BEGIN"
        try:        # straight to the driver: SQLAlchemy's execution layer adds ~60 us
            conn.connection.dbapi_connection.execute(sql)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(sql, None, exc, engine.dialect.loaded_dbapi.Error,
                                      dialect=engine.dialect) from exc

    return engine
