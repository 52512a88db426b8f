"""Keeping the letters of households that did not change when a batch is built again.

A build notes, for every letter it writes, what the letter was made from (a
fingerprint of the template's bytes, the batch's settings and the household's
fields, number, code and URL) and the letter file's size and modification
time, in ``.letterpress/letters.tsv`` in the output folder. The next build of
the same folder links the previous file into the new ``letters/`` instead of
writing it again when the fingerprint is the same and the file was not touched
since (a letter edited by hand is written afresh). Letters are byte for byte
what rendering them would give: ``tests/test_letters.py`` builds a batch,
changes a row, builds again and compares with a build from scratch.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import IO, Dict, Mapping, Optional, Tuple

from letterpress.files import atomic_path, private_dir
from letterpress.models import CANONICAL_FIELDS, Household

#: The index of the letters of an output folder, relative to it.
INDEX = Path(".letterpress") / "letters.tsv"   # outputs.REUSE_INDEX: purge removes it
#: The same for the run sheets (``runsheets/NN-name.pdf``).
RUNSHEETS = Path(".letterpress") / "runsheets.tsv"   # outputs.RUNSHEETS_INDEX
_VERSION = "letters-1"
_SHEETS_VERSION = "runsheets-1"

#: name -> (fingerprint, size, mtime_ns)
Index = Dict[str, Tuple[str, int, int]]


def fingerprint(template_key: str, options: object, household: Household) -> str:
    """What a letter is made from, as a hex digest (``options``: the batch's LetterOptions)."""
    r = household.recipient
    data = repr((_VERSION, template_key, options, household.seq, household.code, household.url,
                 tuple(getattr(r, f) for f in CANONICAL_FIELDS), tuple(r.columns.items())))
    return hashlib.sha1(data.encode("utf-8", "surrogatepass")).hexdigest()


def sheet_fingerprint(volunteer, households, info, total: int, fonts, lang: str) -> str:
    """What a run sheet is made from: the volunteer and badge, the batch, the font and
    every field of the volunteer's households, as a hex digest."""
    font = Path(fonts.path) if getattr(fonts, "path", None) else None
    stamp: tuple = ()
    try:
        stamp = (str(font), font.stat().st_size, font.stat().st_mtime_ns) if font else ()
    except OSError:
        stamp = (str(font),)
    from letterpress import __version__

    data = repr((_SHEETS_VERSION, __version__, volunteer, info, total, fonts, stamp, lang,
                 [(h.seq, h.code, h.url, tuple(getattr(h.recipient, f) for f in CANONICAL_FIELDS))
                  for h in households]))
    return hashlib.sha1(data.encode("utf-8", "surrogatepass")).hexdigest()


def read_index(out_dir: Path, index: Path = INDEX) -> Index:
    """The previous build's index ({} when there is none or it cannot be read)."""
    try:
        text = (Path(out_dir) / index).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    lines = text.splitlines()
    if not lines or lines[0] != _version(index):
        return {}
    out: Index = {}
    for line in lines[1:]:
        parts = line.split("\t")
        if len(parts) == 4 and parts[2].isdigit() and parts[3].isdigit():
            out[parts[0]] = (parts[1], int(parts[2]), int(parts[3]))
    return out


def _version(index: Path) -> str:
    return _SHEETS_VERSION if index == RUNSHEETS else _VERSION


def write_index(out_dir: Path, entries: Mapping[str, Tuple[str, int, int]],
                index: Path = INDEX) -> None:
    with IndexWriter(out_dir, index) as writer:
        for name, entry in entries.items():
            writer.add(name, entry)


class IndexWriter:
    """An index written entry by entry as a build goes (a district's letters are not held
    in memory to be written at the end); it replaces the previous index only when the
    ``with`` block ends without an error.

    ::

        with IndexWriter(out_dir) as index:
            index.add(name, (fingerprint, size, mtime_ns))
    """

    def __init__(self, out_dir: Path, index: Path = INDEX) -> None:
        self.path = Path(out_dir) / index
        self.version = _version(index)
        self._stack = contextlib.ExitStack()
        self._fh: IO[str]

    def __enter__(self) -> "IndexWriter":
        private_dir(self.path.parent)      # it names every household's letter: owner-only
        with self._stack as stack:         # on any error here: nothing left behind
            tmp = stack.enter_context(atomic_path(self.path))
            self._fh = stack.enter_context(open(tmp, "w", encoding="utf-8", newline="\n"))
            self._fh.write(f"{self.version}\n")
            self._stack = stack.pop_all()
        return self

    def add(self, name: str, entry: Tuple[str, int, int]) -> None:
        fp, size, mtime = entry
        self._fh.write(f"{name}\t{fp}\t{size}\t{mtime}\n")

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)


def keep(previous: Mapping[str, Tuple[str, int, int]], old_dir: str, name: str, fp: str,
         target: str) -> Optional[Tuple[str, int, int]]:
    """Link the previous build's letter ``name`` to ``target`` when it was made from the
    same inputs and not touched since; its index entry, or None (then render it)."""
    entry = previous.get(name)
    if entry is None or entry[0] != fp:
        return None
    source = os.path.join(old_dir, name)
    try:
        st = os.stat(source)
        if (st.st_size, st.st_mtime_ns) != entry[1:]:
            return None
        os.link(source, target)
    except OSError:
        return None
    return entry


def noted(fp: str, path: str) -> Tuple[str, int, int]:
    """The index entry of a letter just written to ``path``."""
    st = os.stat(path)
    return fp, st.st_size, st.st_mtime_ns
