"""moto's S3-compatible server, answering one request at a time: `python -m` this module.

`moto_server` / `python -m moto.server` always serve with `threaded=True` (werkzeug's
`run_simple`) and have no option to turn that off. Under that server a conditional PUT checks
`If-None-Match`/`If-Match` and then stores the object without a lock, so two concurrent creates
of one key can both succeed, which real S3 never allows. Serving the same moto application
with werkzeug's `make_server(..., threaded=False)` handles requests one after another, so each
conditional write is checked and applied atomically, as S3 does.

Prints `listening on http://HOST:PORT` once bound (port 0 picks a free port), then serves until
killed. Needs `moto[server]` (moto, werkzeug, flask).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any


def single_threaded_server(host: str, port: int) -> Any:
    """Return moto's S3 application bound to `host`:`port` (0: a free port), served one request at
    a time by `serve_forever()`. Raises ImportError without `moto[server]`, OSError if the address
    cannot be bound."""
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - a test-only extra
        DomainDispatcherApplication,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=False, processes=1)
    os.environ["MOTO_PORT"] = str(server.server_port)  # moto builds some URLs from it
    return server


def main(argv: list[str] | None = None) -> int:
    """Serve moto on --host/--port, single-threaded, until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        server = single_threaded_server(args.host, args.port)
    except ImportError as exc:
        print(f"moto's server is not installed ({exc}): pip install 'moto[server]'", file=sys.stderr)
        return 2
    print(f"listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
