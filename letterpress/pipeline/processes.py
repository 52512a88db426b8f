"""How the build starts its worker processes.

A forked worker starts as a copy of the building process, so it shows (and, as
Python touches reference counts, soon really holds) everything that process
holds: at district size some 200 MiB of households counted once more per
worker. From :data:`FRESH_FROM` households on, workers therefore start fresh
from a small server process (``forkserver``) and are sent only the households
they work on; below it a fork starts faster and costs nothing worth saving, as long as
the build has no other thread (:func:`context`).
"""
from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.context import BaseContext

#: Households from which worker processes start fresh instead of as forks.
FRESH_FROM = 5000


def context(households: int) -> BaseContext:
    """The multiprocessing context for a batch of ``households``.

    A fork copies only the thread that forks: a lock another thread holds at that moment
    (an import under way, a log handler) stays held for ever in the copy, which then
    hangs. So a fork is used only while this is the process's one thread (the command
    line, before the run sheets' thread starts); a build from the staff console, in a
    thread of the server, starts its workers fresh."""
    if not hasattr(os, "fork"):
        return multiprocessing.get_context("spawn")
    if households >= FRESH_FROM or threading.active_count() > 1:
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("fork")


def started() -> None:
    """A task that does nothing: submitted first, from the thread that made the pool, so
    that its worker process is started there (see :func:`context`)."""


#: Seconds between a worker's looks at whether the build that started it is still there.
WATCH_EVERY = 1.0


def watch(build_pid: int) -> None:
    """In a worker process: end it as soon as the build process ``build_pid`` is gone.

    A build killed half-way (``kill -9``, a closed terminal) cannot stop its workers, and a
    worker waiting for its next task would wait for ever; a new build removes what the
    killed one left half-written, so a worker has nothing to finish."""
    import time

    def look() -> None:
        while True:
            time.sleep(WATCH_EVERY)
            try:
                os.kill(build_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:     # the number is someone else's now: ours is gone
                os._exit(1)

    threading.Thread(target=look, name="letterpress-watch", daemon=True).start()


def worker_setup(build_pid: int, lang: str = "") -> None:
    """What every worker process does first: :func:`watch` the build, and speak the
    language of whoever asked for it (a worker started fresh does not inherit it)."""
    watch(build_pid)
    if lang:
        from letterpress import i18n

        i18n.set_lang(lang)


def setup_args() -> tuple:
    """:func:`worker_setup`'s arguments for workers started by this process now."""
    from letterpress import i18n

    return os.getpid(), i18n.current_lang()


def run_apart(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a fresh process of its own; its result (or the error it
    raised) comes back here. What ``fn`` allocates is given back to the system when that
    process ends, not kept by this one for reuse. Should the process die (killed, out
    of memory), ``fn`` runs here instead."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        with ProcessPoolExecutor(1, mp_context=context(FRESH_FROM), initializer=worker_setup,
                                 initargs=setup_args()) as pool:
            return pool.submit(fn, *args, **kwargs).result()
    except BrokenProcessPool:
        return fn(*args, **kwargs)
