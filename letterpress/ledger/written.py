"""The files letterpress wrote for a batch, one row each (``written_files``): what ``build``
may replace and ``purge`` may delete (see :mod:`letterpress.pipeline.outputs`).

A district's batch has some 100,000 of them, so they are written and checked a chunk at a
time, never all held at once by a build.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, Iterator, List

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from letterpress.ledger import schema as S

#: Paths per statement.
CHUNK = 2000


def listed(conn: Connection, batch_id: int) -> Dict[str, List[str]]:
    """Output folder -> paths relative to it, in the order they were first claimed."""
    w = S.written_files
    out: Dict[str, List[str]] = {}
    for folder, path in conn.execute(select(w.c.folder, w.c.path)
                                     .where(w.c.batch_id == batch_id).order_by(w.c.id)):
        out.setdefault(folder, []).append(path)
    return out


def in_folder(conn: Connection, batch_id: int, folder: str) -> List[str]:
    w = S.written_files
    return list(conn.execute(select(w.c.path).where(and_(w.c.batch_id == batch_id,
                                                         w.c.folder == folder))
                             .order_by(w.c.id)).scalars())


def _chunks(paths: Iterable[str]) -> Iterator[List[str]]:
    chunk: List[str] = []
    for path in paths:
        chunk.append(path)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def claim(conn: Connection, batch_id: int, folder: str, planned: Iterable[str],
          exists: Callable[[str], bool]) -> None:
    """Add ``planned`` to the batch's files in ``folder`` (before they are written); the
    paths listed there before that ``exists`` says are gone are dropped."""
    w = S.written_files
    here = and_(w.c.batch_id == batch_id, w.c.folder == folder)
    gone = [(row_id, path) for row_id, path in conn.execute(select(w.c.id, w.c.path).where(here))
            if not exists(path)]
    for start in range(0, len(gone), CHUNK):
        conn.execute(w.delete().where(w.c.id.in_([i for i, _p in gone[start:start + CHUNK]])))
    for chunk in _chunks(planned):
        chunk = list(dict.fromkeys(chunk))
        known = set(conn.execute(select(w.c.path).where(and_(here, w.c.path.in_(chunk))))
                    .scalars())
        new = [{"batch_id": batch_id, "folder": folder, "path": p} for p in chunk
               if p not in known]
        if new:
            conn.execute(w.insert(), new)


def forget(conn: Connection, batch_id: int) -> None:
    """The batch's list goes (``purge``: its files are deleted, and their names are the
    households' and the volunteers')."""
    conn.execute(S.written_files.delete().where(S.written_files.c.batch_id == batch_id))
