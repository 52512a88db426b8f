"""Background work of the staff console: builds, reprints and previews, never in a request.

One worker thread runs the jobs in order (the machine is often a small office
PC, and LibreOffice uses its own processes anyway). A job's state lives in the
server's memory, so the round page shows it again after a reload; a round has
at most one job queued or running at a time.
"""
from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

from letterpress import i18n
from letterpress.errors import LetterpressError

log = logging.getLogger("letterpress.jobs")

#: Finished jobs kept in memory (newest ones).
KEEP_FINISHED = 200


class Busy(Exception):
    """The round already has a job queued or running."""

    def __init__(self, job: "Job") -> None:
        super().__init__(f"round {job.round_id} is busy with job {job.id}")
        self.job = job


@dataclass
class Job:
    id: str
    round_id: int
    kind: str                     # "build", "reprint", "preview"
    state: str = "queued"         # queued, running, done, failed
    stage: str = ""
    done: int = 0
    total: int = 0
    error: Optional[str] = None
    error_code: Optional[str] = None
    created: float = field(default_factory=time.time)
    finished: Optional[float] = None
    lang: Optional[str] = None    # the language of whoever asked: the error is written in it

    def as_json(self) -> dict:
        return {"job": self.id, "round": self.round_id, "kind": self.kind, "state": self.state,
                "stage": self.stage, "done": self.done, "total": self.total, "error": self.error}

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")


class JobQueue:
    """Jobs run one after another by a daemon thread started on first use."""

    def __init__(self) -> None:
        self._jobs: Dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: "queue.Queue[tuple]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    def submit(self, round_id: int, kind: str, work: Callable[[Callable], None]) -> Job:
        """Queue ``work(progress)``; :class:`Busy` when the round has an active build or
        reprint (a preview never blocks, and runs after what is queued before it)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the job queue is closed")
            for current in list(self._jobs.values()):
                if current.round_id == round_id and current.active and current.kind != "preview":
                    raise Busy(current)
            job = Job(secrets.token_hex(8), round_id, kind, lang=i18n.current_lang())
            self._jobs[job.id] = job
            self._prune()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="letterpress-jobs",
                                                daemon=True)
                self._thread.start()
        self._queue.put((job, work))
        return job

    def close(self, timeout: float = 120) -> None:
        """Let the running job finish (up to ``timeout`` seconds); queued jobs never start.

        Called before the app lets go of its ledger, so no job writes to a closed one."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                if job.state == "queued":
                    job.state, job.error_code = "failed", "server_stopped"
                    job.error = i18n._("the server stopped before this job started")
        self._queue.put((None, None))
        if self._thread is not None:
            self._thread.join(timeout)

    def get(self, job_id: str) -> Optional[Job]:
        return self._jobs.get(job_id)

    def for_round(self, round_id: int, kind: Optional[str] = None) -> Optional[Job]:
        """The round's newest job (of ``kind``), or None."""
        mine = [j for j in list(self._jobs.values()) if j.round_id == round_id
                and (kind is None or j.kind == kind)]
        return max(mine, key=lambda j: j.created) if mine else None

    def wait(self, job_id: str, timeout: float = 600) -> Job:
        """Wait for a job to finish (tests and the CLI-like callers)."""
        end = time.time() + timeout
        job = self._jobs[job_id]
        while job.active and time.time() < end:
            time.sleep(0.05)
        return job

    def _prune(self) -> None:
        done = sorted((j for j in self._jobs.values() if not j.active), key=lambda j: j.created)
        for j in done[:-KEEP_FINISHED]:
            del self._jobs[j.id]

    def _run(self) -> None:
        while True:
            job, work = self._queue.get()
            if job is None:
                return
            if job.state != "queued":       # given up when the queue closed
                continue
            job.state = "running"

            def progress(stage: str, done: int, total: int, job: Job = job) -> None:
                job.stage, job.done, job.total = stage, done, total

            with i18n.using(job.lang):
                self._work(job, work, progress)
            job.finished = time.time()

    @staticmethod
    def _work(job: Job, work: Callable[[Callable], None], progress: Callable) -> None:
        try:
            work(progress)
        except LetterpressError as exc:
            job.error, job.error_code = str(exc), exc.code
            job.state = "failed"
        except Exception as exc:        # the worker must survive any job
            log.error("job %s of round %s failed", job.id, job.round_id, exc_info=exc)
            job.error, job.error_code = f"{type(exc).__name__}: {exc}", "internal_error"
            job.state = "failed"
        else:
            job.state = "done"
