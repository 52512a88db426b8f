"""Converting Word letters to PDF with LibreOffice, in a pool of headless processes.

LibreOffice takes a second or two to start and a fraction of one per letter, so
each start converts many letters (``soffice --convert-to pdf --outdir D f1 ... fN``).
``jobs`` processes run side by side, each driven by a thread and each with its own
profile folder, made once and reused by every start (LibreOffice will not run twice
on one profile). A process that finishes no letter for ``timeout`` seconds is
stopped; the letter it was stuck on, and any it could not open, is tried once more
on its own, and a letter that fails again is named in :attr:`ConversionResult.failed`
while the rest of the batch completes. Nothing here prints.
"""
from __future__ import annotations

import itertools
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from letterpress.errors import (
    InputError,
    LetterpressError,
    MissingToolError,
    Where,
)
from letterpress.i18n import N_, _
from letterpress.models import Progress

#: Names looked up on PATH, then the places the official installers use.
SOFFICE_NAMES = ("soffice", "libreoffice")
SOFFICE_PATHS = (r"C:\Program Files\LibreOffice\program\soffice.exe",
                 r"C:\Program Files (x86)\LibreOffice\program\soffice.exe",
                 "/Applications/LibreOffice.app/Contents/MacOS/soffice")
INSTALL_HINT = N_(
    "install LibreOffice: on Debian/Ubuntu `sudo apt install libreoffice-writer-nogui`; "
    "on Windows and macOS use the installer from LibreOffice's own download page. "
    "The .docx letters do not need it: leave out --pdf to make them without LibreOffice"
)
#: Most letters one LibreOffice start converts; batches are made even across workers.
BATCH_SIZE = 50
#: Extra time the first letter of a start gets (at most), for LibreOffice to start up.
STARTUP_SECONDS = 30.0
#: After this many letters stopped LibreOffice (hang or crash) and none came out, give up.
GIVE_UP_AFTER = 3
_DOCX_FILTER = "MS Word 2007 XML"
# A profile counts as "just upgraded" until a document window is shown, which never happens
# headless, so every start would rerun LibreOffice's graphics self-tests (a second of CPU,
# half of a start). Seeding the profile with a later "last version" skips them.
_PROFILE_SEED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<oor:items xmlns:oor="http://openoffice.org/2001/'
    'registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/'
    'XMLSchema-instance">\n<item oor:path="/org.openoffice.Setup/Product"><prop oor:name='
    '"ooSetupLastVersion" oor:op="fuse"><value>99.9</value></prop></item>\n</oor:items>\n')
_POLL = 0.05


def find_soffice() -> Optional[str]:
    """The LibreOffice program: ``LETTERPRESS_SOFFICE``, PATH, then the usual install places."""
    override = os.environ.get("LETTERPRESS_SOFFICE")
    if override:
        return override if Path(override).is_file() else shutil.which(override)
    found = [shutil.which(name) for name in SOFFICE_NAMES]
    return next((f for f in found + [p for p in SOFFICE_PATHS if Path(p).is_file()] if f), None)


def require_soffice() -> str:
    """:func:`find_soffice`, or a :class:`MissingToolError` that says how to install it."""
    found = find_soffice()
    if not found:
        raise MissingToolError(_("PDF conversion needs LibreOffice, which was not found"),
                               code="no_soffice", hint=_(INSTALL_HINT))
    return found


class ConversionFailed(LetterpressError):
    """Some letters could not be converted; the others were."""

    code = "pdf_failed"          # exit status PARTIAL (see the catalogue)


@dataclass(frozen=True)
class ConversionResult:
    """``pdfs`` maps each converted .docx to its PDF, in input order; ``failed`` names the rest."""

    pdfs: Dict[Path, Path]
    failed: List[Tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every letter was converted."""
        return not self.failed

    def error(self) -> Optional[ConversionFailed]:
        """A :class:`ConversionFailed` naming every failed letter, or ``None``."""
        if not self.failed:
            return None
        lines = "\n".join(f"  {path.name}: {reason}" for path, reason in self.failed)
        return ConversionFailed(
            _("%(count)s of %(value)s letter(s) could not be converted to PDF:\n%(lines)s",
              count=len(self.failed), value=len(self.failed) + len(self.pdfs), lines=lines),
            hint=_("open those letters in Word or LibreOffice to see what is wrong with them; "
                   "the other letters were converted"))


def plan_batches(count: int, jobs: int, batch_size: int = BATCH_SIZE) -> List[range]:
    """Split ``range(count)`` into even runs of at most ``batch_size``, a multiple of ``jobs``."""
    if count <= 0:
        return []
    n = math.ceil(count / max(1, batch_size))
    n = min(count, math.ceil(n / max(1, jobs)) * max(1, jobs))
    bounds = [round(i * count / n) for i in range(n + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


@dataclass(frozen=True)
class _Task:
    indices: Tuple[int, ...]
    single: bool = False       # a retry of one letter: a failure now is final


class _Job:
    """What one ``convert`` call shares between its threads."""

    def __init__(self, paths: Sequence[Path], out_dir: Path, stage: Path, timeout: float):
        self.paths, self.out_dir, self.stage, self.timeout = paths, out_dir, stage, timeout
        self.events: "queue.Queue[tuple]" = queue.Queue()
        self.stop = threading.Event()
        self._tasks: "queue.PriorityQueue[tuple]" = queue.PriorityQueue()
        self._order = itertools.count()

    def put(self, task: Optional[_Task]) -> None:
        """Queue a task; single-letter retries go first, ``None`` (stop) before all."""
        self._tasks.put((-1 if task is None else int(not task.single), next(self._order), task))

    def take(self) -> Optional[_Task]:
        return self._tasks.get()[2]

    def deliver(self, pdf: Path, index: int) -> None:
        final = self.out_dir / self.paths[index].with_suffix(".pdf").name
        os.replace(pdf, final)
        self.events.put(("ok", index, final))

    def retry_or_fail(self, task: _Task, index: int, reason: str, stuck: bool = False) -> None:
        if task.single:
            self.events.put(("failed", index, reason, stuck))
        else:
            self.put(_Task((index,), single=True))


#: Process groups of the LibreOffice runs of a conversion, in its staging folder.
PIDS_FILE = "soffice.pids"


def remove_stale_workers() -> int:
    """Remove the LibreOffice folders (profile, temporary copies) that a letterpress killed
    while converting left in the temporary folder; returns how many."""
    removed = 0
    for root in Path(tempfile.gettempdir()).glob("letterpress-soffice*-p*-*"):
        match = re.match(r"^letterpress-soffice\d+-p(\d+)-", root.name)
        if not match or not root.is_dir() or root.stat().st_uid != getattr(os, "getuid",
                                                                          lambda: -1)():
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
            continue                      # its letterpress still runs
        except ProcessLookupError:
            pass
        except OSError:
            continue
        shutil.rmtree(root, ignore_errors=True)
        removed += 1
    return removed


class _Worker:
    """One LibreOffice profile folder (in the temp folder) and the process running on it."""

    def __init__(self, soffice: str, number: int):
        self.soffice, self.number, self.runs = soffice, number, 0
        self.root = Path(tempfile.mkdtemp(prefix=f"letterpress-soffice{number}-p{os.getpid()}-"))
        self.profile = self.root / "profile"
        tmp = self.root / "tmp"
        tmp.mkdir()
        (self.root / "home").mkdir()
        self.env = dict(os.environ, HOME=str(self.root / "home"), TMPDIR=str(tmp), TMP=str(tmp),
                        TEMP=str(tmp))
        self.proc: Optional[subprocess.Popen] = None

    def command(self, files: Sequence[Path], outdir: Path) -> List[str]:
        cmd = [self.soffice, f"-env:UserInstallation={self.profile.as_uri()}", "--headless",
               "--invisible", "--nologo", "--nodefault", "--nolockcheck", "--norestore",
               "--nofirststartwizard"]
        if all(f.suffix.lower() == ".docx" for f in files):
            cmd.append(f"--infilter={_DOCX_FILTER}")  # random bytes must not pass as text
        return cmd + ["--convert-to", "pdf", "--outdir", str(outdir)] + [str(f) for f in files]

    def run(self, task: _Task, job: _Job) -> None:
        """Convert the task's letters, posting ``ok``/``failed`` events and queueing retries."""
        self.runs += 1
        if not self.profile.exists():
            (self.profile / "user").mkdir(parents=True)
            (self.profile / "user" / "registrymodifications.xcu").write_text(_PROFILE_SEED)
        run_dir = job.stage / f"w{self.number}-{self.runs}"
        in_dir, out = run_dir / "in", run_dir / "out"
        in_dir.mkdir(parents=True)
        out.mkdir()
        names = []
        for i in task.indices:   # plain ASCII names: no trouble with the locale's encoding
            names.append(in_dir / f"{i:06d}{job.paths[i].suffix.lower()}")
            try:
                names[-1].symlink_to(job.paths[i].resolve())
            except OSError:
                shutil.copyfile(job.paths[i], names[-1])
        group = ({"start_new_session": True} if os.name == "posix" else   # killed as a whole
                 {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)})
        with open(run_dir / "log.txt", "wb") as log:
            self.proc = subprocess.Popen(self.command(names, out), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         cwd=str(self.root), **group)
        # If letterpress itself is killed, the next run finds this and stops the orphan
        # (see letterpress.pipeline.outputs.sweep): it would go on writing letters.
        with open(job.stage / PIDS_FILE, "a", encoding="ascii") as fh:
            fh.write(f"{self.proc.pid}\n")
        delivered: set = set()
        status, rc = self._watch(task, job, out, delivered)
        self.proc = None
        if status != "exited":
            shutil.rmtree(self.profile, ignore_errors=True)   # start afresh after a kill
        if status != "stopped":
            log_text = (run_dir / "log.txt").read_text("utf-8", "replace")
            self._settle(task, job, out, status, rc, delivered, log_text)
        shutil.rmtree(run_dir, ignore_errors=True)

    def _watch(self, task: _Task, job: _Job, out: Path, delivered: set) -> Tuple[str, Optional[int]]:
        """Wait for the process; hand over letters as they finish; stop it when it stalls."""
        deadline = time.monotonic() + job.timeout + min(job.timeout, STARTUP_SECONDS)
        latest = -1
        proc = self.proc
        assert proc is not None, "the process is started before it is watched"
        while True:
            rc = proc.poll()
            now = time.monotonic()
            newest = _latest_output(out, task.indices)
            if newest > latest:
                # A letter is finished once LibreOffice has begun the next one.
                for pos in range(max(latest, 0), newest):
                    _take(task, job, out, pos, delivered)
                latest, deadline = newest, now + job.timeout
            if rc is not None:
                return ("exited" if rc == 0 else "crashed"), rc
            if job.stop.is_set() or now > deadline:
                self.kill()
                return ("stopped" if job.stop.is_set() else "timeout"), None
            time.sleep(_POLL)

    @staticmethod
    def _settle(task: _Task, job: _Job, out: Path, status: str, rc: Optional[int],
                delivered: set, log: str) -> None:
        """Sort out the letters of a finished run: delivered, to retry, or failed."""
        for pos in range(len(task.indices)):
            _take(task, job, out, pos, delivered)
        missing = [pos for pos in range(len(task.indices)) if pos not in delivered]
        culprit: Optional[int] = None
        untried: List[int] = []
        if status != "exited":
            # LibreOffice works in order: it stopped on the first letter after the last
            # one it began (or on that one, if its PDF was left unfinished).
            after = [pos for pos in missing if pos >= _latest_output(out, task.indices)]
            if after:
                culprit, untried = after[0], after[1:]
        if untried:
            job.put(_Task(tuple(task.indices[p] for p in untried)))
        for pos in missing:
            if pos != culprit and pos not in untried:
                job.retry_or_fail(task, task.indices[pos], _load_reason(log))
        if culprit is not None:
            reason = (_("LibreOffice did not finish it within %(seconds)s s and was stopped",
                        seconds=format(job.timeout, "g"))
                      if status == "timeout" else
                      _("LibreOffice stopped unexpectedly while converting it (exit status "
                        "%(rc)s)", rc=rc))
            job.retry_or_fail(task, task.indices[culprit], reason, stuck=True)

    def kill(self) -> None:
        """Stop the running LibreOffice process and everything it started."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            if os.name == "posix":
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            proc.kill()
        proc.wait()


def _take(task: _Task, job: _Job, out: Path, pos: int, delivered: set) -> None:
    """Hand over the letter at ``pos`` if its PDF is complete and not yet handed over."""
    index = task.indices[pos]
    pdf = out / f"{index:06d}.pdf"
    if pos not in delivered and _complete(pdf):
        job.deliver(pdf, index)
        delivered.add(pos)


def _latest_output(out: Path, indices: Tuple[int, ...]) -> int:
    """Position (in the task) of the newest PDF LibreOffice has begun, or -1."""
    position = {index: pos for pos, index in enumerate(indices)}
    found = [position.get(int(e.name[:-4]), -1) for e in os.scandir(out)
             if e.name.endswith(".pdf") and e.name[:-4].isdigit()]
    return max(found, default=-1)


def _complete(pdf: Path) -> bool:
    """True for a PDF that was written to the end (it closes with ``%%EOF``)."""
    try:
        with open(pdf, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 1024))
            return size > 0 and b"%%EOF" in fh.read()
    except OSError:
        return False


def _load_reason(log: str) -> str:
    if "could not be loaded" in log:
        return _("LibreOffice could not open it (it is damaged or not a Word .docx document)")
    tail = [line for line in log.splitlines() if line.strip() and "javaldx" not in line]
    if tail:
        return _("LibreOffice made no PDF of it (%(detail)s)", detail=tail[-1].strip())
    return _("LibreOffice made no PDF of it")


class ConversionPool:
    """``jobs`` LibreOffice workers that keep their profiles across :meth:`convert` calls.

    Use as a context manager (or call :meth:`close`) so the profiles are removed.
    """

    def __init__(self, jobs: int = 1, *, timeout: float = 120, batch_size: int = BATCH_SIZE,
                 soffice: Optional[str] = None):
        self.jobs = max(1, int(jobs))
        self.timeout = float(timeout)
        self.batch_size = max(1, int(batch_size))
        self.soffice = soffice or require_soffice()
        self._workers: List[_Worker] = []

    def __enter__(self) -> "ConversionPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop any running process and remove every profile folder."""
        for worker in self._workers:
            worker.kill()
            shutil.rmtree(worker.root, ignore_errors=True)
        self._workers.clear()

    def convert(self, docx_paths: Sequence[Path], out_dir: Path,
                progress: Optional[Progress] = None) -> ConversionResult:
        """Convert each file to ``out_dir/<stem>.pdf``; see :func:`convert`."""
        paths = [Path(p) for p in docx_paths]
        out_dir = Path(out_dir)
        seen: Dict[str, Path] = {}
        for path in paths:
            key = path.with_suffix(".pdf").name.casefold()
            if key in seen:
                raise InputError(_("two letters would make the same PDF: %(seen)s and %(path)s",
                                   seen=seen[key], path=path),
                                 code="duplicate_pdf_name", where=Where(file=str(path)),
                                 hint=_("give every letter a different file name"))
            seen[key] = path
        out_dir.mkdir(parents=True, exist_ok=True)
        outcome: Dict[int, object] = {i: _("the file does not exist")
                                      for i, path in enumerate(paths) if not path.is_file()}
        if progress and outcome:
            progress("pdf", len(outcome), len(paths))
        todo = [i for i in range(len(paths)) if i not in outcome]
        if todo:
            self._run(paths, todo, out_dir, outcome, progress)
        pdfs = {paths[i]: r for i in range(len(paths)) for r in [outcome[i]] if isinstance(r, Path)}
        failed = [(paths[i], r) for i in range(len(paths)) for r in [outcome[i]] if isinstance(r, str)]
        for path, _reason in failed:   # never leave an old PDF where a failed letter's would be
            stale = out_dir / path.with_suffix(".pdf").name
            if stale.exists():
                stale.unlink()
        return ConversionResult(pdfs, failed)

    def _run(self, paths: List[Path], todo: List[int], out_dir: Path,
             outcome: Dict[int, object], progress: Optional[Progress]) -> None:
        stage = Path(tempfile.mkdtemp(prefix=".pdf-", suffix=".partial", dir=out_dir)).resolve()
        job = _Job(paths, out_dir, stage, self.timeout)
        for batch in plan_batches(len(todo), self.jobs, self.batch_size):
            job.put(_Task(tuple(todo[i] for i in batch)))
        count = min(self.jobs, len(todo))
        while len(self._workers) < count:
            self._workers.append(_Worker(self.soffice, len(self._workers) + 1))
        threads = [threading.Thread(target=_drive, args=(w, job), daemon=True)
                   for w in self._workers[:count]]
        for t in threads:
            t.start()
        try:
            self._collect(job, len(todo), outcome, progress)
        finally:
            job.stop.set()
            for _thread in threads:
                job.put(None)
            for t in threads:
                t.join()
            shutil.rmtree(stage, ignore_errors=True)

    @staticmethod
    def _collect(job: _Job, count: int, outcome: Dict[int, object],
                 progress: Optional[Progress]) -> None:
        """Take the threads' events until every letter is settled; give up on a hopeless run."""
        settled, delivered, stuck = 0, 0, []
        while settled < count:
            event = job.events.get()
            if event[0] == "error":
                raise event[1]
            outcome[event[1]] = event[2]
            settled += 1
            if event[0] == "ok":
                delivered += 1
            elif event[3]:
                stuck.append(event[1])
            if progress:
                progress("pdf", len(outcome), len(job.paths))
            if not delivered and len(stuck) >= GIVE_UP_AFTER:
                names = ", ".join(job.paths[i].name for i in stuck)
                raise LetterpressError(
                    _("LibreOffice hangs or stops on every letter so far (%(names)s): %(event)s",
                      names=names, event=event[2]),
                    code="soffice_failed", where=Where(file=str(job.paths[stuck[0]])),
                    hint=_("open one of those letters in LibreOffice to see whether the "
                           "template itself is the trouble, or try a newer LibreOffice"))


def _drive(worker: _Worker, job: _Job) -> None:
    """Thread body: take tasks until told to stop; errors go to the calling thread."""
    while True:
        task = job.take()
        if task is None or job.stop.is_set():
            return
        try:
            worker.run(task, job)
        except BaseException as exc:
            job.events.put(("error", exc))
            return


def convert(docx_paths: Sequence[Path], out_dir: Path, *, jobs: int = 1, timeout: float = 120,
            progress: Optional[Progress] = None, batch_size: int = BATCH_SIZE,
            soffice: Optional[str] = None) -> ConversionResult:
    """Convert Word files to ``out_dir/<stem>.pdf`` with ``jobs`` LibreOffice processes.

    ``timeout`` is per letter: a process that finishes no letter for that long is
    stopped. ``progress("pdf", done, total)`` is called as letters finish.
    Raises :class:`MissingToolError` (code ``no_soffice``) before anything is
    written when LibreOffice is not installed.
    """
    with ConversionPool(jobs, timeout=timeout, batch_size=batch_size, soffice=soffice) as pool:
        return pool.convert(docx_paths, out_dir, progress=progress)
