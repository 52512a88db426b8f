"""Cutting guesses short: failed attempts per anonymous client, in memory.

Only failures count (an unknown or malformed code, a bad badge or staff
token). After :attr:`FailureLimiter.limit` failures within
:attr:`FailureLimiter.window` seconds, a client is answered 429 at once with a
``Retry-After`` header until its oldest failure in the window has expired. No
answer is ever slowed down on purpose.

Clients are told apart by their address (``request.remote_addr``; with
``behind_proxy`` the address from ``X-Forwarded-For`` set by werkzeug's
``ProxyFix``). A logged-in volunteer or staff member (valid cookie or bearer
token) is never counted or limited, so a whole team behind one NAT keeps
working while a stranger on the same NAT is cut short.

The counter lives in the memory of one server process: each process (and each
server sharing a ledger) counts on its own, and a restart forgets.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from typing import Callable, Deque

#: Failed attempts allowed per client and window.
DEFAULT_LIMIT = 10
#: The window, in seconds.
DEFAULT_WINDOW = 600
#: Clients remembered at most (the least recently failing are forgotten first).
MAX_CLIENTS = 50_000


class FailureLimiter:
    """Counts failed attempts per client key within a sliding window (thread-safe)."""

    def __init__(self, limit: int = DEFAULT_LIMIT, window: float = DEFAULT_WINDOW,
                 clock: Callable[[], float] = time.monotonic,
                 max_clients: int = MAX_CLIENTS) -> None:
        self.limit = int(limit)
        self.window = float(window)
        self.clock = clock
        self.max_clients = max_clients
        self._failures: "OrderedDict[str, Deque[float]]" = OrderedDict()
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> Deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it is not blocked."""
        if self.limit <= 0:
            return 0
        with self._lock:
            now = self.clock()
            times = self._prune(key, now)
            if len(times) < self.limit:
                return 0
            oldest_that_matters = times[len(times) - self.limit]
            return max(1, math.ceil(oldest_that_matters + self.window - now))

    def fail(self, key: str) -> None:
        """Count one failed attempt of ``key``."""
        if self.limit <= 0:
            return
        with self._lock:
            now = self.clock()
            times = self._prune(key, now)
            if not times:
                self._failures[key] = times
            times.append(now)
            self._failures.move_to_end(key)
            # Keep at most ``limit`` stamps per client and a bounded number of clients.
            while len(times) > self.limit:
                times.popleft()
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
