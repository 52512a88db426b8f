"""Writing files so that a failure never leaves a half-written file under a final name."""
from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence, Union

PathLike = Union[str, "os.PathLike[str]"]

#: Modes of what letterpress writes: it holds names, addresses, phones and secrets.
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: PathLike) -> Path:
    """Make ``path`` and any missing parents, each owner-only (0700); return it."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            if not folder.is_dir():
                raise
        else:
            os.chmod(folder, PRIVATE_DIR)   # whatever the umask
    return path


def make_private(path: PathLike) -> None:
    """Take group and others' access away from a file or folder of ours (0600 / 0700)."""
    try:
        st = os.stat(path)
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            return
        if st.st_mode & 0o077:
            os.chmod(path, st.st_mode & 0o700)
    except OSError:
        pass


def open_private(path: PathLike, mode: str = "a", **kwargs) -> IO:
    """``open()`` for appending to or creating a file only its owner can read (0600)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE)
    make_private(path)
    return os.fdopen(fd, mode, **kwargs)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    final = Path(path)
    private_dir(final.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb", **kwargs) -> Iterator[IO]:
    """``open()`` for writing through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh


# Characters a spreadsheet would treat as the start of a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """Text for a CSV/XLSX cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def write_csv(path: PathLike, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """UTF-8 CSV with a BOM (Excel opens it correctly), written atomically."""
    with atomic_open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([spreadsheet_safe(v) for v in row])


_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def safe_filename(text: str, fallback: str = "household", limit: int = 60) -> str:
    """A file-system-safe name that keeps Chinese characters: ``王秀英``, ``Li_Ming``."""
    text = unicodedata.normalize("NFC", text or "").strip()
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\s+", "_", text).strip("._ ")
    return text[:limit] or fallback


@contextlib.contextmanager
def staged_dir(path: PathLike) -> Iterator[Path]:
    """Yield a new empty folder beside ``path``; on success it takes the place of ``path``.

    On any exception the staging folder is removed and ``path`` keeps what it had.
    """
    final = Path(path)
    private_dir(final.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def numbered_filename(index: int, name: str, fallback: str, suffix: str = ".pdf") -> str:
    """``01-李明.pdf``: a two-digit number, then a file-system-safe name (or ``fallback``)."""
    return f"{index:02d}-{safe_filename(name, fallback) if name else fallback}{suffix}"
