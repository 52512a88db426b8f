"""The slips and the run sheets of a build: ``slips.pdf`` and ``runsheets/NN-name.pdf``.

Unchanged run sheets and slip pages of the previous build of the same folder are
kept; the rest of the run sheets are written by a second process while this one
writes the slips.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from letterpress.config import Settings
from letterpress.files import numbered_filename, staged_dir
from letterpress.models import BatchInfo, Household, Progress, Volunteer
from letterpress.pipeline.outputs import ours_in


def write(settings: Settings, info: BatchInfo, households: Sequence[Household],
          volunteers: Sequence[Volunteer], out: Path, progress: Optional[Progress] = None,
          keep_pages: bool = False) -> Tuple[Path, ...]:
    """``slips.pdf`` and ``runsheets/NN-name.pdf`` (one per volunteer, delivery order).

    A run sheet the previous build made from the same households and badge is kept
    as it was (see :mod:`letterpress.pipeline.reuse`). With ``jobs > 1`` the others
    are written by a second process while this one writes the slips; ``keep_pages``
    reuses the slip pages of unchanged households (``slips/pagecache.py``).
    """
    from letterpress.pipeline import reuse
    from letterpress.pipeline.build import volunteers_of
    from letterpress.slips import fonts, slips

    choice = fonts.find_font(settings.font)
    total = len(households)
    by_name = {v.name: v for v in volunteers}
    # each volunteer's households by their place in the list: a district's are not held
    groups: Dict[str, List[int]] = {name: [] for name in volunteers_of(households)}
    for i, h in enumerate(households):
        groups[h.volunteer].append(i)
    old_dir = out / "runsheets"
    previous = reuse.read_index(out, reuse.RUNSHEETS) if old_dir.is_dir() else {}
    entries: reuse.Index = {}
    with staged_dir(old_dir, ours_in("runsheets")) as staging:
        todo = []
        for index, (name, places) in enumerate(groups.items(), start=1):
            volunteer = by_name.get(name) or Volunteer(index=index, name=name)
            path = staging / numbered_filename(index, name, "unassigned")
            fp = reuse.sheet_fingerprint(volunteer, [households[i] for i in places], info,
                                         total, choice, settings.lang)
            entry = reuse.keep(previous, str(old_dir), path.name, fp, str(path))
            if entry is None:
                todo.append((volunteer, places, path, fp))
            else:
                entries[path.name] = entry

        def write_all_slips() -> None:
            slips.write_slips(households, out / "slips.pdf", info=info, total=total,
                              layout=settings.slip_layout, fonts=choice, package=settings.package,
                              slip_fields=settings.slip_fields, progress=progress,
                              cache=slips.PageCache(out / ".letterpress") if keep_pages else None)

        def sheets() -> Iterator[tuple]:
            for v, places, path, _fp in todo:
                yield v, [households[i] for i in places], path

        if settings.jobs > 1 and total >= 200 and todo:
            _runsheets_beside(write_all_slips, sheets(), info, total, choice, settings.lang)
        else:
            write_all_slips()
            write_runsheets(sheets(), info, total, choice, settings.lang, progress, len(todo))
        entries.update((path.name, reuse.noted(fp, str(path))) for _v, _m, path, fp in todo)
    reuse.write_index(out, entries, reuse.RUNSHEETS)
    return out / "slips.pdf", out / "runsheets"


#: Run sheets sent to the second process at a time: at most this many, and no more than
#: :data:`HOUSEHOLDS_A_CALL` households unless one sheet has more (only these are held).
SHEETS_A_CALL = 50
HOUSEHOLDS_A_CALL = 1000


def _calls(sheets: Iterator[tuple], stop) -> Iterator[List[tuple]]:
    """``sheets`` in groups for one call each (see :data:`SHEETS_A_CALL`)."""
    group: List[tuple] = []
    held = 0
    for sheet in sheets:
        if stop.is_set():
            return
        if group and (len(group) == SHEETS_A_CALL or held + len(sheet[1]) > HOUSEHOLDS_A_CALL):
            yield group
            group, held = [], 0
        group.append(sheet)
        held += len(sheet[1])
    if group:
        yield group


def _runsheets_beside(write_all_slips, sheets: Iterator[tuple], info: BatchInfo, total: int,
                      fonts, lang: str) -> None:
    """``sheets`` written by a second process while this one runs ``write_all_slips``.

    A thread here hands them over a few at a time (:func:`_calls`), two calls ahead, so
    only those households are held (made from the list when their turn comes)."""
    import collections
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from letterpress.pipeline import processes

    failed: List[BaseException] = []
    stop = threading.Event()
    with ProcessPoolExecutor(1, mp_context=processes.context(total),
                             initializer=processes.worker_setup,
                             initargs=processes.setup_args()) as pool:
        # started from this thread, before the one below: a fork must not come from there
        pool.submit(processes.started).result()

        def feed() -> None:
            pending: collections.deque = collections.deque()
            try:
                for chunk in _calls(sheets, stop):
                    pending.append(pool.submit(write_runsheets, chunk, info, total, fonts,
                                               lang))
                    while len(pending) > 2:
                        pending.popleft().result()
                while pending:
                    pending.popleft().result()
            except BaseException as exc:  # noqa: BLE001 - raised again by the build's thread
                failed.append(exc)

        feeder = threading.Thread(target=feed, name="letterpress-runsheets", daemon=True)
        feeder.start()
        try:
            write_all_slips()
        except BaseException:
            stop.set()          # the build fails: no more run sheets handed over
            raise
        finally:
            feeder.join()
    if failed:
        raise failed[0]


def write_runsheets(sheets: Iterable[tuple], info: BatchInfo, total: int, fonts, lang: str,
                    progress: Optional[Progress] = None, count: int = 0) -> None:
    """Each ``(volunteer, households, path)`` of ``sheets`` as a run sheet (``count``:
    how many, for ``progress``)."""
    from letterpress.slips import slips

    for done, (volunteer, mine, path) in enumerate(sheets, start=1):
        slips.write_runsheet(volunteer, mine, path, info=info, total=total, fonts=fonts,
                             lang=lang)
        if progress:
            progress("run sheets", done, count or done)
