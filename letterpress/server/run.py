"""Running the app with waitress: in the foreground (``letterpress serve``) or in a thread (tests).

Waitress drops ``X-Forwarded-*`` headers for an app that is not behind a proxy;
an app made with ``create_app(..., behind_proxy=True)`` is handed them and
believes them only when the connection comes from the proxy's own address
(see :class:`letterpress.server.TrustedProxies`).

The connection limits and timeouts below are set on purpose (README, "The
server's limits"): many idle or trickling connections must not lock out phones.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
from typing import Optional

from flask import Flask

from letterpress.errors import LetterpressError
from letterpress.i18n import _

DEFAULT_THREADS = 8
#: Seconds between two of waitress's "Task queue depth" warnings (see :class:`ThrottledLog`).
QUEUE_WARNING_EVERY = 60.0

# Connection limits, chosen so that a crowd of idle or trickling connections (from one
# address or many) cannot lock volunteers' phones out. Waitress reads a request in its
# main loop and gives a thread only a request that has fully arrived, so a half-sent
# request costs a socket, not a thread; what must not run out is the number of sockets.
#: Connections served at once (waitress stops accepting beyond it; its default is 100).
CONNECTION_LIMIT = 1000
#: An idle connection (keep-alive, or a request that stopped arriving) is closed after this.
CHANNEL_TIMEOUT = 30
#: How often idle connections are looked for (seconds).
CLEANUP_INTERVAL = 5
#: A request still arriving this long after its first byte (a trickle) is cut off.
REQUEST_DEADLINE = 20.0
#: Largest request head and body accepted by the server (the app takes 64 KiB bodies).
MAX_HEADER_SIZE = 16 * 1024
MAX_BODY_SIZE = 1024 * 1024
#: Connections waiting in the kernel to be accepted.
BACKLOG = 1024
#: File descriptors kept free for the ledger, logs and LibreOffice besides connections.
SPARE_FDS = 64


def connection_limit(wanted: int = CONNECTION_LIMIT) -> int:
    """``wanted``, or fewer when the process may not open that many files (the soft
    limit is raised up to the hard one first)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + SPARE_FDS
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # pragma: no cover - not allowed here
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - SPARE_FDS))


class ServeError(LetterpressError):
    code = "serve_failed"


def make_server(app: Flask, host: str = "127.0.0.1", port: int = 8470,
                threads: int = DEFAULT_THREADS):
    """A bound (not yet running) waitress server; ``port=0`` picks a free port.

    The bound port is ``server.effective_port``. Raises :class:`ServeError`
    (``port_in_use``, ``cannot_bind``) when the address cannot be used.
    """
    from waitress.server import create_server

    behind_proxy = bool(app.config.get("LETTERPRESS_BEHIND_PROXY"))
    try:
        server = create_server(app, host=host, port=port, threads=threads, ident="letterpress",
                               clear_untrusted_proxy_headers=not behind_proxy,
                               expose_tracebacks=False, connection_limit=connection_limit(),
                               channel_timeout=CHANNEL_TIMEOUT,
                               cleanup_interval=CLEANUP_INTERVAL, backlog=BACKLOG,
                               max_request_header_size=MAX_HEADER_SIZE,
                               max_request_body_size=MAX_BODY_SIZE,
                               asyncore_use_poll=True)   # select() stops at 1024 sockets
    except OSError as exc:
        in_use = getattr(exc, "errno", None) in (98, 48, 10048)
        raise ServeError(
            _("cannot listen on %(host)s:%(port)s: %(value)s",
              host=host, port=port, value=exc.strerror or exc),
            code="port_in_use" if in_use else "cannot_bind",
            hint=_("another program uses this port: choose another with --port")
            if in_use else _("check --host (an address of this machine)")) from None
    dispatcher = server.task_dispatcher
    if getattr(dispatcher, "queue_logger", None) is not None:
        dispatcher.queue_logger = ThrottledLog(dispatcher.queue_logger, QUEUE_WARNING_EVERY)
    for listener in _listeners(server):
        listener.channel_class = channel_class()
    return server


def _socket_map(server) -> dict:
    """The sockets (listening, connections, trigger) of what ``create_server`` made."""
    found = getattr(server, "map", None)
    return found if found is not None else server._map


def _listeners(server):
    """The listening servers of what ``create_server`` made (one, or several addresses)."""
    from waitress.server import BaseWSGIServer

    return [obj for obj in list(_socket_map(server).values()) if isinstance(obj, BaseWSGIServer)]


def _close_all(sockets: dict) -> None:
    for dispatcher in list(sockets.values()):
        try:
            dispatcher.close()
        except OSError:  # pragma: no cover - already closed
            pass


@functools.lru_cache(maxsize=None)
def channel_class():
    """The connection class of letterpress's waitress servers (made once, when first served)."""
    from waitress.channel import HTTPChannel

    class Channel(HTTPChannel):
        """Waitress's connection without a busy loop in its main thread.

        A task thread sending a response holds the connection's output lock,
        and while its ``send`` waits in the kernel the main loop runs: it finds
        the connection writable (bytes are buffered), cannot take the lock,
        and polls again at once, and again, holding the interpreter lock the
        task thread needs to finish and let go. Under a crowd of phones that
        loop took most of the processor (half the throughput, a p99 five times
        longer). So a connection whose output lock a running task holds is not
        polled for writing: the task sends what it can itself, and pulls the
        server's trigger when it leaves bytes for the main loop to send.
        """

        request_started = 0.0

        def received(self, data):
            """As waitress's, but a request that keeps trickling in is cut off after
            :data:`REQUEST_DEADLINE` seconds (an idle one is closed by ``channel_timeout``)."""
            if data:
                now = time.monotonic()
                if self.request is None:
                    self.request_started = now
                elif now - self.request_started > REQUEST_DEADLINE:
                    self.will_close = True
                    return False
            return super().received(data)

        def writable(self):
            if not super().writable():
                return False
            if self.requests and not (self.will_close or self.close_when_flushed):
                if not self.outbuf_lock.acquire(False):
                    return False
                self.outbuf_lock.release()
            return True

    return Channel


class ThrottledLog:
    """A logger's ``warning`` said at most once every ``every`` seconds (the rest dropped).

    Waitress warns "Task queue depth is N" each time a request waits for a
    free thread, which under a crowd of phones is every request; it writes that
    while holding the lock its threads take their work from, and so slowed the
    server down by a quarter. Once a minute says the same to an operator.
    """

    def __init__(self, logger, every: float, clock=time.monotonic) -> None:
        self.logger = logger
        self.every = every
        self.clock = clock
        self._next = 0.0
        self._dropped = 0

    def warning(self, msg, *args, **kwargs) -> None:
        now = self.clock()
        if now < self._next:
            self._dropped += 1
            return
        self._next = now + self.every
        if self._dropped:
            msg = f"{msg} ({self._dropped} such warnings in the last {self.every:.0f} s)"
            self._dropped = 0
        self.logger.warning(msg, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.logger, name)


def serve(app: Flask, host: str = "127.0.0.1", port: int = 8470,
          threads: int = DEFAULT_THREADS) -> None:
    """Serve ``app`` on ``host:port`` with waitress until interrupted (Ctrl-C returns)."""
    server = make_server(app, host, port, threads)
    try:
        server.run()
    finally:
        server.task_dispatcher.shutdown()


class BackgroundServer:
    """The app served by waitress in a daemon thread (end-to-end tests, embedding).

    ::

        with BackgroundServer(app) as srv:     # a free loopback port
            open(srv.url + "/H/...")
    """

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0,
                 threads: int = 4) -> None:
        self.server = make_server(app, host, port, threads)
        self.host = host
        self.port = int(self.server.effective_port)
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> "BackgroundServer":
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="letterpress-server",
                                        daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        """Waitress's main loop, one turn at a time until :meth:`stop` asks it to end; then
        every socket is closed here, in the thread that served them."""
        server = self.server
        sockets = _socket_map(server)
        try:
            while sockets and not self._stopping.is_set():
                server.asyncore.loop(timeout=server.adj.asyncore_loop_timeout, map=sockets,
                                     use_poll=server.adj.asyncore_use_poll, count=1)
        finally:
            _close_all(sockets)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every connection, then end the worker threads.

        The main loop is woken through waitress's trigger; should the trigger be gone
        (a descriptor closed under it), the loop still ends within one poll timeout."""
        self._stopping.set()
        if self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(OSError):
                self.server.trigger.pull_trigger()
            self._thread.join(timeout)
        else:
            _close_all(_socket_map(self.server))
        self.server.task_dispatcher.shutdown()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
