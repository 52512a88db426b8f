"""Writing files so that a failure never leaves a half-written file under a final name."""
from __future__ import annotations

import contextlib
import csv
import errno
import os
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Optional, Sequence, Union

from letterpress.errors import DiskFullError
from letterpress.i18n import N_, _

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


_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
#: Bytes of a name part: with a number, a suffix and a temporary name's ``.``/``.XXXXXXXX.part``
#: around it, a file name stays far below the 255 bytes most file systems allow.
NAME_BYTES = 120


def _invisible(ch: str) -> bool:
    """Format characters (Unicode category Cf): bidi controls such as U+202E, which make
    ``evil‮fdp.exe`` show as ``evilexe.pdf``, zero-width spaces and joiners."""
    return unicodedata.category(ch) == "Cf"


def shorten_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, at a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def safe_filename(text: str, fallback: str = "household", limit: int = 60) -> str:
    """A file-system-safe name that keeps Chinese characters: ``王秀英``, ``Li_Ming``.

    Bidi controls and other invisible characters are dropped; the name is at most
    ``limit`` characters and :data:`NAME_BYTES` bytes of UTF-8."""
    text = unicodedata.normalize("NFC", text or "").strip()
    text = "".join(ch for ch in text if not _invisible(ch))
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\s+", "_", text).strip("._ ")
    text = shorten_bytes(text[:limit], NAME_BYTES).rstrip("._ ")
    return text or fallback


def name_max(folder: PathLike) -> int:
    """The longest file name (in bytes) the file system of ``folder`` (or of its nearest
    existing parent) allows; 255 where it cannot be asked."""
    path = Path(folder).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return int(os.pathconf(candidate, "PC_NAME_MAX"))
            except (OSError, ValueError, AttributeError):
                return 255
    return 255


def _everything(name: str) -> bool:
    """Every entry of a folder is one letterpress wrote (the default of :func:`staged_dir`)."""
    return True


@contextlib.contextmanager
def staged_dir(path: PathLike, ours: Callable[[str], bool] = _everything) -> Iterator[Path]:
    """Yield a new empty folder beside ``path``; on success it takes the place of ``path``.

    On any exception the staging folder is removed and ``path`` keeps what it had.
    Entries of the old folder for which ``ours(name)`` is false (a user's
    ``notes.txt``) are carried over into the new one, never deleted; if the
    process dies between the two renames, the next run puts them back
    (:func:`restore_old_dir`, called by :func:`letterpress.pipeline.outputs.sweep`).
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
        if old.exists():
            restore_old_dir(old, final, ours)
            if final.exists():
                os.replace(final, old)
        else:
            os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        restore_old_dir(old, final, ours)


def restore_old_dir(old: Path, final: Path, ours: Callable[[str], bool] = _everything) -> None:
    """Move what is not ours from ``old`` (a replaced folder) into ``final``, then remove
    ``old``. Without ``final`` the old folder simply takes its place again."""
    if not final.exists():
        os.replace(old, final)
        return
    for entry in list(old.iterdir()):
        if not ours(entry.name) and not (final / entry.name).exists():
            os.replace(entry, final / entry.name)
    leftover = [e for e in old.iterdir() if not ours(e.name)]
    if leftover:     # a name now taken by one of ours: keep theirs beside, never delete it
        for entry in leftover:
            target = final / f"{entry.stem}.kept{entry.suffix}"
            n = 1
            while target.exists():
                n += 1
                target = final / f"{entry.stem}.kept{n}{entry.suffix}"
            os.replace(entry, target)
    shutil.rmtree(old, ignore_errors=True)


def numbered_filename(index: int, name: str, fallback: str, suffix: str = ".pdf") -> str:
    """``01-李明.pdf``: a two-digit number, then a file-system-safe name (or ``fallback``)."""
    return f"{index:02d}-{safe_filename(name, fallback) if name else fallback}{suffix}"


# -- room on the disk ---------------------------------------------------------------------------
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
SPACE_HINT = N_("free some space on that disk, or give --out a folder on another disk")


def megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def free_bytes(folder: PathLike) -> Optional[int]:
    """Free space on the file system of ``folder`` (or of its nearest existing parent)."""
    path = Path(folder).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def check_space(folder: PathLike, need: int) -> None:
    """Raise :class:`DiskFullError` (before anything is written) when the disk holding
    ``folder`` has less than ``need`` bytes free."""
    free = free_bytes(folder)
    if free is not None and free < need:
        raise DiskFullError(_("the disk holding %(folder)s has %(free)s free; this needs about "
                              "%(need)s", folder=folder, free=megabytes(free),
                              need=megabytes(need)), hint=_(SPACE_HINT))


def is_no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


@contextlib.contextmanager
def space_errors(folder: PathLike, need: Optional[int] = None) -> Iterator[None]:
    """Turn "no space left on device" while writing into ``folder`` into a
    :class:`DiskFullError` that names the folder and how much was needed."""
    try:
        yield
    except OSError as exc:
        if not is_no_space(exc):
            raise
        raise no_space_error(folder, need) from None


def no_space_error(folder: PathLike, need: Optional[int] = None) -> DiskFullError:
    free = free_bytes(folder)
    text = _("the disk holding %(folder)s is full (%(free)s free now); files being written "
             "were not put in place", folder=folder,
             free=megabytes(free) if free is not None else "?")
    if need:
        text += _("; this needs about %(need)s", need=megabytes(need))
    return DiskFullError(text, hint=_(SPACE_HINT))
