"""Running the app with waitress: in the foreground (``letterpress serve``) or in a thread (tests).

Waitress drops ``X-Forwarded-*`` headers from clients it does not trust; an
app made with ``create_app(..., behind_proxy=True)`` is handed them (its
werkzeug ``ProxyFix`` trusts one proxy), every other app never sees them.
"""
from __future__ import annotations

import threading
from typing import Optional

from flask import Flask

from ..errors import LetterpressError

DEFAULT_THREADS = 8


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
        return create_server(app, host=host, port=port, threads=threads, ident="letterpress",
                             clear_untrusted_proxy_headers=not behind_proxy,
                             expose_tracebacks=False)
    except OSError as exc:
        in_use = getattr(exc, "errno", None) in (98, 48, 10048)
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            code="port_in_use" if in_use else "cannot_bind",
            hint="another program uses this port: choose another with --port"
            if in_use else "check --host (an address of this machine)") from None


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

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> "BackgroundServer":
        self._thread = threading.Thread(target=self.server.run, name="letterpress-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every connection, then end the worker threads."""
        server = self.server

        def close_all() -> None:   # runs inside the server's loop
            for dispatcher in list(server._map.values()):
                try:
                    dispatcher.close()
                except OSError:  # pragma: no cover - already closed
                    pass

        if self._thread is not None and self._thread.is_alive():
            server.trigger.pull_trigger(close_all)
            self._thread.join(timeout)
        else:
            close_all()
        server.task_dispatcher.shutdown()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
