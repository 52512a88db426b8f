"""A light path for ``POST /api/events``: the request a district's volunteers send most.

Flask's request machinery (contexts, session cookie, language, routing, hooks)
costs more than recording the event does. :class:`EventPosts` sits in front
of the Flask app and answers a well-formed post of a volunteer itself: the
same checks, the same :func:`letterpress.server.api.record_event`, the same
JSON, status and headers as the Flask view. Everything else goes on to the
Flask app untouched: other paths and methods, a query string, a body that is
not a JSON object with the fields it needs, a badge the ledger refuses (the
view answers 401 or 429 and counts the failure), any unexpected error.

A post handed on after the ledger was asked is recorded at most once all the
same: a post always carries a nonce, and nothing is written for a refused
badge.
"""
from __future__ import annotations

import io
from typing import Callable, Iterable, List, Optional, Tuple

from werkzeug.http import HTTP_STATUS_CODES

from letterpress.errors import LedgerError
from letterpress.server.api import _event_fields, parse_body, record_event
from letterpress.server.auth import MAX_TOKEN

PATH = "/api/events"


def _is_json(content_type: str) -> bool:
    """As werkzeug's ``Request.is_json``: ``application/json`` or ``application/*+json``."""
    mimetype = content_type.partition(";")[0].strip().lower()
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json"))


def _bearer(header: str) -> Optional[str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class EventPosts:
    """WSGI middleware answering volunteers' well-formed event posts (see the module doc)."""

    def __init__(self, app, wsgi_app: Callable) -> None:
        from letterpress.server import NO_STORE_HEADERS, SECURITY_HEADERS

        self.app = app
        self.next = wsgi_app
        self.max_length = app.config.get("MAX_CONTENT_LENGTH")
        self.headers: List[Tuple[str, str]] = [*SECURITY_HEADERS, *NO_STORE_HEADERS]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if (environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST"
                or environ.get("QUERY_STRING")):
            return self.next(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return self.next(environ, start_response)
        if length < 0 or (self.max_length is not None and length > self.max_length):
            return self.next(environ, start_response)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)     # as it was, for the Flask app
        answer = self._answer(environ, body)
        if answer is None:
            return self.next(environ, start_response)
        status, payload, extra = answer
        data = (self._dumps(payload) + "\n").encode("utf-8")
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}",
                       [("Content-Type", "application/json"),
                        ("Content-Length", str(len(data))), *extra, *self.headers])
        return [data]

    def _dumps(self, payload) -> str:
        """As ``flask.jsonify``: the app's JSON provider, compact unless debugging."""
        provider = self.app.json
        compact = getattr(provider, "compact", None)
        if (compact is None and self.app.debug) or compact is False:
            return provider.dumps(payload, indent=2)
        return provider.dumps(payload, separators=(",", ":"))

    def _answer(self, environ: dict, body: bytes):
        """``(status, JSON body, extra headers)``, or None to hand the post on."""
        token = _bearer(environ.get("HTTP_AUTHORIZATION", ""))
        if not token or len(token) > MAX_TOKEN or not _is_json(environ.get("CONTENT_TYPE", "")):
            return None
        data, problem = parse_body(body)
        if problem is not None:
            return None
        fields, problem = _event_fields(data)
        if problem is not None:
            return None
        ledger = self.app.extensions["letterpress"].ledger
        try:
            answer = record_event(ledger, token, fields)
        except LedgerError as exc:
            if exc.code not in ("ledger_busy", "ledger_unreachable"):
                return None
            # As the app's error handler: asking again at once would only wait again.
            self.app.logger.warning("ledger not available: %s", exc)
            return 503, {"error": exc.code, "message": exc.message}, [("Retry-After", "5")]
        except Exception:   # the Flask app records (or refuses) it again and reports
            return None
        if answer is None:
            return None
        return answer[0], answer[1], []
