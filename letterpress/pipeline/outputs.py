"""What a batch writes in its output folder, and only that.

- :func:`planned_files` names every file a command is about to write, before it
  writes; the ledger keeps that list per batch and folder (:func:`claim`), so
  ``purge`` deletes exactly what letterpress wrote and never a user's
  ``print/notes.txt`` or ``reprint-budget.xlsx``.
- :func:`check_folder` refuses a folder where one of those files already
  exists but was not written by letterpress for this batch (it would be
  replaced), or that holds another batch's files (two lists would mix).
  Files of others beside ours are left alone: ``letters/``, ``runsheets/``
  and ``print/`` are replaced with their foreign entries carried over.
- :func:`sweep` removes what a killed command left behind: hidden
  ``.NAME.XXXXXXXX.part`` files and ``.NAME.XXXXXXXX.partial`` folders (they
  may hold names and phones), ``.pdf-work.*`` folders, and puts back a user's
  files from a ``.NAME.old-PID`` folder caught between two renames.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

from letterpress.errors import InputError, Where
from letterpress.files import atomic_open, numbered_filename, private_dir, restore_old_dir
from letterpress.i18n import _

#: The marker file naming the batch whose files a folder holds.
MARKER = ".letterpress-batch"
#: The index of the letters a build made, to reuse unchanged ones (holds file names).
REUSE_INDEX = ".letterpress/letters.tsv"
#: The same for the run sheets.
RUNSHEETS_INDEX = ".letterpress/runsheets.tsv"
#: The pages of the slips a build made, to reuse unchanged ones (holds what slips.pdf holds).
SLIP_CACHE = ".letterpress/slips.cache"
#: Names letterpress writes at the top of a batch's folder.
TOP_FILES = ("letters.docx", "letters.pdf", "slips.pdf", "manifest.csv")
TOP_FOLDERS = ("letters", "runsheets", "print")
REPRINT_RE = re.compile(r"^reprint-\d{8}-\d{6}$")
_LETTER_RE = re.compile(r"^\d{4,}-.*\.docx$")
_PDF_RE = re.compile(r"^\d{2,}-.*\.pdf$")
#: mkstemp/mkdtemp: ``.NAME.`` + 8 random characters + ``.part`` or ``.partial``.
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.(part|partial)$")
_WORK_RE = re.compile(r"^\.pdf-work\.[a-z0-9_]{8}$")
_OLD_RE = re.compile(r"^\.(?P<name>.+)\.old-\d+$")


def ours_in(folder: str) -> Callable[[str], bool]:
    """Which entries of one of our folders letterpress writes (the rest are someone else's)."""
    if folder == "letters":
        return lambda name: bool(_LETTER_RE.match(name))
    if folder in ("runsheets", "print"):
        return lambda name: bool(_PDF_RE.match(name))
    if REPRINT_RE.match(folder):
        return lambda name: name in ("slips.pdf", "letters.docx", "letters")
    if folder == Path(REUSE_INDEX).parent.name:
        return lambda name: name in (Path(REUSE_INDEX).name, Path(RUNSHEETS_INDEX).name,
                                     Path(SLIP_CACHE).name)
    return lambda name: False


def _is_our_name(name: str) -> bool:
    return name in TOP_FILES or name in TOP_FOLDERS or bool(REPRINT_RE.match(name))


class Planned:
    """The files (relative, ``/``-separated) a build writes, as often as they are walked:
    the letters' names are made from the households each time, not held."""

    def __init__(self, top: Sequence[str], letter_files: Iterable[str],
                 after: Sequence[str]) -> None:
        self._parts = (top, letter_files, after)

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._parts)


def planned_files(letter_files: Iterable[str], volunteers: Sequence[str], *, pdf: bool,
                  labels: bool = False) -> Planned:
    """The files a build writes: ``letter_files`` as in the manifest, run sheets and
    print packs of ``volunteers`` (in run-sheet order)."""
    top = ["letters.docx", "slips.pdf", "manifest.csv", REUSE_INDEX, RUNSHEETS_INDEX,
           SLIP_CACHE]
    after = []
    for index, name in enumerate(volunteers, start=1):
        after.append("runsheets/" + numbered_filename(index, name, "unassigned"))
        if pdf:
            after.append("print/" + numbered_filename(index, name, "unassigned"))
            if labels:
                after.append("print/" + numbered_filename(index, name, "unassigned",
                                                          suffix="-labels.pdf"))
    if pdf:
        after.append("letters.pdf")
    return Planned(top, letter_files, after)


def folder_key(out: Path) -> str:
    return str(Path(out).resolve())


def read_marker(out: Path) -> Optional[dict]:
    try:
        data = json.loads((Path(out) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(out: Path, title: str) -> None:
    out = private_dir(out)
    with atomic_open(out / MARKER, "w", encoding="utf-8") as fh:
        json.dump({"batch": title, "written_by": "letterpress"}, fh, ensure_ascii=False)


@contextlib.contextmanager
def marked(out: Path, title: str) -> Iterator[None]:
    """The marker written for the ``with`` block; a marker it made is taken away again
    when the block fails (nothing of the batch is left in a folder that had none)."""
    made = read_marker(out) is None
    write_marker(out, title)
    try:
        yield
    except BaseException:
        if made:
            (Path(out) / MARKER).unlink(missing_ok=True)
        raise


def check_folder(out: Path, title: str, planned: Iterable[str],
                 recorded: Iterable[str] = ()) -> None:
    """Refuse (``folder_not_ours``) to write where a file letterpress did not write for this
    batch would be replaced, or (``folder_of_other_batch``) into another batch's folder."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(_("%(out)s is a file, not a folder", out=out), code="out_not_a_folder",
                         where=Where(file=str(out)), hint=_("give a folder with --out"))
    marker = read_marker(out)
    if marker is not None and marker.get("batch") not in (None, title):
        raise InputError(
            _("%(out)s holds the files of another batch, %(other)r; writing %(title)r there "
              "would mix two lists", out=out, other=marker.get("batch"), title=title),
            code="folder_of_other_batch", where=Where(file=str(out)),
            hint=_("give this batch a folder of its own with --out (or purge the other batch)"))
    ours = set(recorded)
    same_batch = marker is not None and marker.get("batch") == title
    clashes = []
    for rel in planned:
        path = out / rel
        if rel in ours or not (path.exists() or path.is_symlink()):
            continue
        if same_batch and not path.is_symlink() and path.is_file():
            continue     # written for this batch before the ledger kept a list
        clashes.append(rel)
    for name in TOP_FOLDERS:
        path = out / name
        if path.exists() and not path.is_dir():
            clashes.append(name)
    if clashes:
        shown = ", ".join(clashes[:5]) + (" …" if len(clashes) > 5 else "")
        raise InputError(
            _("%(out)s holds files that letterpress did not write for %(title)r: %(files)s; "
              "they would be replaced, so nothing was written", out=out, title=title,
              files=shown), code="folder_not_ours", where=Where(file=str(out)),
            hint=_("move those files away, or give an empty folder (or a new one) with --out"))


def sweep(out: Path) -> List[Path]:
    """Remove what a killed letterpress left in ``out`` (see the module doc); returns it."""
    out = Path(out)
    removed: List[Path] = []
    if not out.is_dir():
        return removed
    for entry in sorted(out.iterdir()):
        name = entry.name
        m = _OLD_RE.match(name)
        if m and entry.is_dir() and (m.group("name") in TOP_FOLDERS
                                     or REPRINT_RE.match(m.group("name"))):
            restore_old_dir(entry, out / m.group("name"), ours_in(m.group("name")))
            removed.append(entry)
            continue
        m = _TEMP_RE.match(name)
        if (m and (_is_our_name(m.group("name")) or m.group("name") == MARKER)) \
                or (_WORK_RE.match(name) and entry.is_dir()):
            _remove(entry)
            removed.append(entry)
    for folder in [out / n for n in TOP_FOLDERS] + [out / Path(REUSE_INDEX).parent] + [
            p for p in out.glob("reprint-*") if REPRINT_RE.match(p.name)]:
        if not folder.is_dir():
            continue
        ours = ours_in(folder.name)
        for entry in sorted(folder.iterdir()):
            m = _TEMP_RE.match(entry.name)
            if m and (ours(m.group("name")) or entry.name.startswith(".letters.")):
                _remove(entry)
                removed.append(entry)
    return removed


def stop_orphans(folder: Path) -> int:
    """Stop LibreOffice runs a killed letterpress left running for ``folder`` (they would
    go on writing into it): the process groups listed in its ``soffice.pids`` files."""
    import os
    import signal

    stopped = 0
    if not hasattr(os, "killpg"):   # pragma: no cover - Windows
        return stopped
    for listed in folder.rglob("soffice.pids"):
        try:
            pids = [int(x) for x in listed.read_text(encoding="ascii").split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                cmdline = b""
            if b"soffice" not in cmdline and b"oosplash" not in cmdline:
                continue      # gone, or the number now belongs to another program
            try:
                os.killpg(pid, signal.SIGKILL)
                stopped += 1
            except OSError:
                continue
    return stopped


def _remove(path: Path) -> None:
    if path.is_dir() and _WORK_RE.match(path.name) and stop_orphans(path):
        import time

        time.sleep(0.3)           # let the stopped processes let go of their files
        shutil.rmtree(path, ignore_errors=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# --- the list of written files, kept in the ledger -------------------------------------------

def claim(ledger, batch_id: int, out: Path, planned: Iterable[str]) -> None:
    """Add ``planned`` to what the ledger knows letterpress wrote for the batch in ``out``
    (before writing them); entries no longer on disk are dropped."""
    out = Path(out)
    ledger.claim_files(batch_id, folder_key(out), planned, lambda rel: (out / rel).exists())


def recorded(ledger, batch_id: int, out: Path) -> List[str]:
    return ledger.written_in(batch_id, folder_key(out))


def legacy_files(out: Path) -> List[str]:
    """For a batch built before the ledger kept a list: our files found by their names."""
    out = Path(out)
    found = [n for n in TOP_FILES if (out / n).is_file()]
    for folder in list(TOP_FOLDERS) + sorted(p.name for p in out.glob("reprint-*")
                                             if REPRINT_RE.match(p.name)):
        path = out / folder
        if not path.is_dir():
            continue
        ours = ours_in(folder)
        for entry in sorted(path.iterdir()):
            if ours(entry.name):
                if entry.is_dir():
                    found += [f"{folder}/{entry.name}/{p.name}" for p in sorted(entry.iterdir())
                              if _LETTER_RE.match(p.name)] + [f"{folder}/{entry.name}"]
                else:
                    found.append(f"{folder}/{entry.name}")
    return found


def deletable(lists: Dict[str, List[str]]) -> List[Path]:
    """Every file of ``lists`` (folder -> relative paths) that exists, then the folders
    that will be empty once they are gone, deepest first."""
    files: List[Path] = []
    folders: Dict[Path, None] = {}
    for folder, rels in lists.items():
        base = Path(folder)
        for rel in rels:
            if not rel or rel.startswith("/") or ".." in Path(rel).parts:
                continue
            path = base / rel
            if path.is_file() or path.is_symlink():
                files.append(path)
            parent = path.parent
            while parent != base and base in parent.parents:
                folders[parent] = None
                parent = parent.parent
    return files + sorted(folders, key=lambda p: len(p.parts), reverse=True)


def delete(paths: Sequence[Path]) -> int:
    """Delete the files; remove the folders among ``paths`` only when empty (a user's
    file inside keeps its folder). Returns how many were removed."""
    count = 0
    for path in paths:
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
            count += 1
        except FileNotFoundError:
            continue
        except OSError:   # a folder with someone else's file in it stays
            continue
    return count
