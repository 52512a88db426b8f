"""A batch being written is locked in the ledger, so two programs never write it at once.

``build``, ``pdf``, ``slips``, ``reprint``, ``purge`` and ``volunteers reissue``
take the lock of their batch (and of its output folder) for as long as they
write. The lock is a row of the ``meta`` table, so it holds for every program
on the ledger: two terminals on one computer, or two computers on one
PostgreSQL database. A second program is refused at once with ``batch_busy``,
naming the one at work.

A lock whose program died (``kill -9``, a power cut) does not stay forever:
on the same computer a lock of a process that no longer runs is taken over at
once; from another computer, a lock whose holder has not renewed it for
:data:`STALE_AFTER` seconds is (the holder renews it every :data:`HEARTBEAT`
seconds while it works).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import socket
import threading
import time
from typing import List, Optional, Sequence

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError

from letterpress.errors import LedgerError
from letterpress.i18n import _
from letterpress.ledger import schema as S

#: Seconds between two renewals of a held lock.
HEARTBEAT = 15.0
#: A lock not renewed for this many seconds belongs to a program that stopped.
STALE_AFTER = 90.0


def lock_key(name: str) -> str:
    """The ``meta`` key of a lock (the table's keys are at most 64 characters)."""
    return "lock:" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _stale(holder: dict, now: float) -> bool:
    if now - float(holder.get("beat", 0)) > STALE_AFTER:
        return True
    if holder.get("host") == socket.gethostname():
        pid = int(holder.get("pid", 0) or 0)
        return pid <= 0 or (pid != os.getpid() and not _alive(pid))
    return False


def busy_error(holder: dict, title: str) -> LedgerError:
    since = _dt.datetime.fromtimestamp(float(holder.get("since", 0))).strftime("%H:%M:%S")
    return LedgerError(
        _("batch %(title)r is being written right now by another letterpress (`%(what)s`, "
          "process %(pid)s on %(host)s, since %(since)s); nothing was changed", title=title,
          what=holder.get("what", "?"), pid=holder.get("pid", "?"),
          host=holder.get("host", "?"), since=since),
        code="batch_busy",
        hint=_("wait until that command has finished, then run this one again (a lock left by "
               "a program that was stopped is released within %(seconds)s seconds)",
               seconds=int(STALE_AFTER)))


class BatchLock:
    """Held locks of one command; renewed by a daemon thread until :meth:`release`."""

    def __init__(self, ledger, keys: List[str], value: dict) -> None:
        self.ledger = ledger
        self.keys = keys
        self.value = value
        self._text = json.dumps(value, sort_keys=True)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "BatchLock":
        self._thread = threading.Thread(target=self._renew, name="letterpress-lock",
                                        daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            value = dict(self.value, beat=time.time())
            text = json.dumps(value, sort_keys=True)
            try:
                with self.ledger.transaction(write=True) as conn:
                    for key in self.keys:
                        conn.execute(S.meta.update().where(and_(
                            S.meta.c.key == key, S.meta.c.value == self._text)).values(value=text))
                self.value, self._text = value, text
            except Exception:  # pragma: no cover - the ledger went away; try again later
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            with self.ledger.transaction(write=True) as conn:
                for key in self.keys:
                    conn.execute(S.meta.delete().where(and_(S.meta.c.key == key,
                                                            S.meta.c.value == self._text)))
        except LedgerError:  # pragma: no cover - a stale lock is taken over anyway
            pass

    def __enter__(self) -> "BatchLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(ledger, title: str, names: Sequence[str], what: str) -> BatchLock:
    """Lock ``names`` (e.g. the batch title and its output folder) for the command ``what``.

    Raises :class:`LedgerError` ``batch_busy`` when another program holds one of them.
    """
    now = time.time()
    value = {"what": what, "batch": title, "host": socket.gethostname(), "pid": os.getpid(),
             "since": now, "beat": now, "nonce": os.urandom(8).hex()}
    text = json.dumps(value, sort_keys=True)
    keys = [lock_key(n) for n in dict.fromkeys(names)]
    try:
        with ledger.transaction(write=True) as conn:
            for key in keys:
                row = conn.execute(select(S.meta.c.value).where(S.meta.c.key == key)
                                   .with_for_update()).first()
                if row is None:
                    conn.execute(S.meta.insert().values(key=key, value=text))
                    continue
                try:
                    holder = json.loads(row.value)
                except ValueError:
                    holder = {}
                if not _stale(holder, now):
                    raise busy_error(holder, title)
                done = conn.execute(S.meta.update().where(and_(
                    S.meta.c.key == key, S.meta.c.value == row.value)).values(value=text)).rowcount
                if done != 1:
                    raise busy_error(holder, title)
    except IntegrityError:
        # Another program inserted the same lock at the same moment (PostgreSQL).
        with ledger.transaction() as conn:
            rows = [conn.execute(select(S.meta.c.value).where(S.meta.c.key == k)).scalar()
                    for k in keys]
        holder = next((json.loads(r) for r in rows if r), {})
        raise busy_error(holder, title) from None
    return BatchLock(ledger, keys, value).start()
