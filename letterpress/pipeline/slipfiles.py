"""The slips and the run sheets of a build: ``slips.pdf`` and ``runsheets/NN-name.pdf``.

Unchanged run sheets and slip pages of the previous build of the same folder are
kept; the rest of the run sheets are written by a second process while this one
writes the slips.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

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
    groups: Dict[str, List[Household]] = {name: [] for name in volunteers_of(households)}
    for h in households:
        groups[h.volunteer].append(h)
    old_dir = out / "runsheets"
    previous = reuse.read_index(out, reuse.RUNSHEETS) if old_dir.is_dir() else {}
    entries: reuse.Index = {}
    with staged_dir(old_dir, ours_in("runsheets")) as staging:
        todo = []
        for index, (name, mine) in enumerate(groups.items(), start=1):
            volunteer = by_name.get(name) or Volunteer(index=index, name=name)
            path = staging / numbered_filename(index, name, "unassigned")
            fp = reuse.sheet_fingerprint(volunteer, mine, info, total, choice, settings.lang)
            entry = reuse.keep(previous, str(old_dir), path.name, fp, str(path))
            if entry is None:
                todo.append((volunteer, mine, path, fp))
            else:
                entries[path.name] = entry

        def write_all_slips() -> None:
            slips.write_slips(households, out / "slips.pdf", info=info, total=total,
                              layout=settings.slip_layout, fonts=choice, package=settings.package,
                              slip_fields=settings.slip_fields, progress=progress,
                              cache=slips.PageCache(out / ".letterpress") if keep_pages else None)

        sheets = [(v, mine, path) for v, mine, path, _fp in todo]
        if settings.jobs > 1 and total >= 200 and todo:
            _runsheets_beside(write_all_slips, sheets, info, total, choice, settings.lang)
        else:
            write_all_slips()
            write_runsheets(sheets, info, total, choice, settings.lang, progress)
        entries.update((path.name, reuse.noted(fp, str(path))) for _v, _m, path, fp in todo)
    reuse.write_index(out, entries, reuse.RUNSHEETS)
    return out / "slips.pdf", out / "runsheets"


#: Run sheets sent to the second process at a time (it holds only these households).
SHEETS_A_CALL = 50


def _runsheets_beside(write_all_slips, sheets, info: BatchInfo, total: int, fonts,
                      lang: str) -> None:
    """``sheets`` written by a second process while this one runs ``write_all_slips``."""
    from concurrent.futures import ProcessPoolExecutor

    from letterpress.pipeline import processes

    with ProcessPoolExecutor(1, mp_context=processes.context(total),
                             initializer=processes.worker_setup,
                             initargs=processes.setup_args()) as pool:
        calls = [pool.submit(write_runsheets, sheets[i:i + SHEETS_A_CALL], info, total, fonts,
                             lang) for i in range(0, len(sheets), SHEETS_A_CALL)]
        write_all_slips()
        for call in calls:
            call.result()


def write_runsheets(sheets, info: BatchInfo, total: int, fonts, lang: str,
                    progress: Optional[Progress] = None) -> None:
    """Each ``(volunteer, households, path)`` of ``sheets`` as a run sheet."""
    from letterpress.slips import slips

    for done, (volunteer, mine, path) in enumerate(sheets, start=1):
        slips.write_runsheet(volunteer, mine, path, info=info, total=total, fonts=fonts,
                             lang=lang)
        if progress:
            progress("run sheets", done, len(sheets))
