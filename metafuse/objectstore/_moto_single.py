"""moto's S3-compatible server, one request at a time or in parallel: `python -m` this module.

`moto_server` / `python -m moto.server` always serve with `threaded=True` (werkzeug's
`run_simple`) and have no option to turn that off. Under that server a conditional PUT checks
`If-None-Match`/`If-Match` and then stores the object without a lock, so two concurrent creates
of one key can both succeed, which real S3 never allows. Serving the same moto application
with werkzeug's `make_server(..., threaded=False)` handles requests one after another, so each
conditional write is checked and applied atomically, as S3 does.

With `--threaded`, requests are served in parallel (a thread each), and every request that
changes an object (PUT, POST, DELETE) holds a lock of that object's key from the precondition
check to the store, so a conditional write stays atomic while requests for other keys, and all
reads, proceed at once: the figures then measure the catalog, not a server that answers one
request at a time.

Every connection gets `IDLE_TIMEOUT` seconds per read or write, as real S3 drops a connection
that stops sending: without it, one client that connects and then says nothing (a thread stalled
between connect and send, a process paused mid-request) holds the one-at-a-time server, and
every other client behind it, for as long as its socket stays open.

Prints `listening on http://HOST:PORT` once bound (port 0 picks a free port), then serves until
killed. Needs `moto[server]` (moto, werkzeug, flask).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

IDLE_TIMEOUT = 10.0
"""Seconds a connection may stay silent (no byte read or written) before the server drops it;
well under the clients' own 30 s read timeout, far above any pause a live client makes."""

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class KeyLocks:
    """A WSGI wrapper that serializes the requests changing one object key (see the docstring)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("PUT", "POST", "DELETE"):
            return self.app(environ, start_response)
        key = f"{environ.get('HTTP_HOST', '')}{environ.get('PATH_INFO', '')}"
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            # The whole response is produced under the lock: moto applies the write while the
            # application runs, not while the body is sent.
            return list(self.app(environ, start_response))


def moto_server(host: str, port: int, threaded: bool = False, idle_timeout: float = IDLE_TIMEOUT) -> Any:
    """Return moto's S3 application bound to `host`:`port` (0: a free port), served one request at
    a time by `serve_forever()`, or in parallel with writes to one key in turn if `threaded`;
    a connection silent for `idle_timeout` s is dropped, so it cannot hold the server.
    Raises ImportError without `moto[server]`, OSError if the address cannot be bound."""
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - a test-only extra
        DomainDispatcherApplication,
        create_backend_app,
    )
    from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: PLC0415

    # socketserver applies `timeout` to each accepted socket; werkzeug treats the timeout as a
    # dropped connection and the server moves on to the next one. Made with type(): where
    # werkzeug is not installed (the typecheck session), a class statement would subclass Any.
    handler: Any = type("IdleTimeoutHandler", (WSGIRequestHandler,), {"timeout": idle_timeout})

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    app: Any = DomainDispatcherApplication(create_backend_app)
    if threaded:
        app = KeyLocks(app)
    server = make_server(host, port, app, threaded=threaded, processes=1, request_handler=handler)
    os.environ["MOTO_PORT"] = str(server.server_port)  # moto builds some URLs from it
    return server


def main(argv: list[str] | None = None) -> int:
    """Serve moto on --host/--port (single-threaded unless --threaded) until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--threaded", action="store_true", help="serve requests in parallel, writes to one key in turn"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=IDLE_TIMEOUT,
        help=f"seconds a connection may stay silent before it is dropped (default {IDLE_TIMEOUT:g})",
    )
    args = parser.parse_args(argv)
    try:
        server = moto_server(args.host, args.port, args.threaded, args.idle_timeout)
    except ImportError as exc:
        print(f"moto's server is not installed ({exc}): pip install 'moto[server]'", file=sys.stderr)
        return 2
    print(f"listening on http://{args.host}:{server.server_port}", flush=True)
    serve_until_interrupted(server)
    return 0


def serve_until_interrupted(server: Any) -> None:
    """Serve until a KeyboardInterrupt (Ctrl-C, or a SIGTERM the caller turns into one); the
    listening socket is closed whatever ends it."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    raise SystemExit(main())
