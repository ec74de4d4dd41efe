"""Real parts for testing stores: a moto S3 server in a subprocess and a fault-injecting proxy.

Standard library only here; the server subprocess needs `moto[server]`.

- `MotoServer`: starts `python -m metafuse.objectstore._moto_single` on a free loopback port,
  waits until it answers HTTP, and stops it. Requests are served one at a time (see that
  module for why: moto's threaded server does not apply conditional writes atomically).
- `FaultProxy`: an HTTP proxy on loopback between a client and the server that adds latency,
  answers 503 or 409 without forwarding, or forwards the request and then drops the connection
  or answers 500, so the client cannot know whether its write was applied.

The same ambiguity without a network, for a `LocalDirStore`, is `metafuse.objectstore.lost_replies`.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import queue
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

from .errors import MissingDependency

MOTO_INSTALL = "pip install 'moto[server]'"
"""What to run when the moto server is missing."""

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class MotoServer:
    """One moto S3 server subprocess on loopback; `start()` returns its URL.

    Single-threaded unless `threaded` (requests in parallel, writes to one key in turn: see
    `metafuse.objectstore._moto_single`).

    Raises `MissingDependency` (naming `moto[server]`) if moto is not installed, and
    `RuntimeError` with the server's own output if it does not come up within `timeout` s.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        timeout: float = 60.0,
        log_path: str | None = None,
        threaded: bool = False,
    ) -> None:
        self.host = host
        self.threaded = threaded
        self.timeout = timeout
        self.log_path = log_path
        self.endpoint_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def start(self) -> str:
        """Start the server, wait until it answers a request, and return `http://host:port`."""
        if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
            raise MissingDependency("the S3 tests' moto server", "moto[server]", MOTO_INSTALL)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        if self.log_path:
            self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        module = "metafuse.objectstore._moto_single"
        command = [sys.executable, "-m", module, "--host", self.host, "--port", "0"]
        if self.threaded:
            command.append("--threaded")
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            env=env,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        stdout = self._process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        deadline = time.monotonic() + self.timeout
        try:
            line = lines.get(timeout=self.timeout)
        except queue.Empty:
            line = ""
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"moto server did not start within {self.timeout:g} s: {self._tail_log()}")
        self.endpoint_url = line.split()[-1]
        while True:  # bound is not the same as answering: wait for a real HTTP reply
            try:
                status = _http_status(self.endpoint_url, "GET", "/")
                if status < 500:
                    return self.endpoint_url
            except OSError:
                pass
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.stop()
                raise RuntimeError(f"moto server at {self.endpoint_url} never answered: {self._tail_log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Terminate the server (kill it after 10 s) and close its log; safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _tail_log(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return "(no log kept)"
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-2000:] or "(empty log)"

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _http_status(base_url: str, method: str, path: str) -> int:
    host_port = base_url.split("://", 1)[1]
    connection = http.client.HTTPConnection(host_port, timeout=5)
    try:
        connection.request(method, path)
        return connection.getresponse().status
    finally:
        connection.close()


@dataclass(frozen=True)
class FaultPlan:
    """Probabilities (0..1) of each fault, drawn once per request; their sum is at most 1.

    - `slow`: wait up to `max_delay` s before forwarding (then proceed normally);
    - `unavailable`: answer 503 SlowDown without forwarding (the request did not happen);
    - `conflict`: for a PUT, answer 409 ConditionalRequestConflict without forwarding;
    - `drop_after`: forward, let the server apply it, then close the connection unanswered;
    - `error_after`: forward, let the server apply it, then answer 500 InternalError;
    - `late`: for a PUT, answer 500 InternalError at once and forward the request `late_delay`
      seconds later, or, with `late_delay=None`, when `FaultProxy.release_late()` is called (a
      request that reaches the store after its client gave up on it).
    """

    slow: float = 0.0
    unavailable: float = 0.0
    conflict: float = 0.0
    drop_after: float = 0.0
    error_after: float = 0.0
    max_delay: float = 0.05
    late: float = 0.0
    late_delay: float | None = 1.0

    @classmethod
    def mixed(cls, rate: float, max_delay: float = 0.05) -> FaultPlan:
        """`rate` of all requests get a fault, split evenly over the five kinds."""
        share = rate / 5
        return cls(share, share, share, share, share, max_delay)

    def draw(self, rng: random.Random, method: str) -> str:
        """The fault for one request ("" for none)."""
        roll = rng.random()
        for name in ("slow", "unavailable", "conflict", "drop_after", "error_after", "late"):
            roll -= getattr(self, name)
            if roll < 0:
                return "" if name in ("conflict", "late") and method != "PUT" else name
        return ""


_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
)


class FaultProxy:
    """A loopback HTTP proxy to `upstream` injecting `plan`'s faults; thread-safe counters.

    Faults are drawn from one seeded random stream per HTTP method, so the faults the first n
    requests of a method get are the same in every run with the same `seed`.

    `counts[(method, fault)]` counts requests by method and the fault they got ("" for none);
    `bytes_up` and `bytes_down` count HTTP bytes from and to clients (status line, headers, body).
    """

    def __init__(self, upstream: str, plan: FaultPlan | None = None, seed: int = 0) -> None:
        self.upstream = upstream.split("://", 1)[1].rstrip("/")
        self._plan = plan or FaultPlan()
        self._seed = seed
        self._streams: dict[str, random.Random] = {}
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.bytes_up = 0
        self.bytes_down = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None
        self._held: list[threading.Timer] = []

    @property
    def plan(self) -> FaultPlan:
        """The faults now being injected."""
        with self._lock:
            return self._plan

    @plan.setter
    def plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan

    def start(self) -> str:
        """Serve in a background thread; returns the proxy's URL."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def release_late(self) -> int:
        """Forward every request held by a `late` fault with `late_delay=None`, in the order
        they came, and wait until the store has answered each; return how many."""
        with self._lock:
            held, self._held = self._held, []
        for request in held:
            request.start()
            request.join()
        return len(held)

    def _hold(self, request: threading.Timer) -> None:
        with self._lock:
            self._held.append(request)

    def reset_counts(self) -> None:
        """Zero the request and byte counters."""
        with self._lock:
            self.counts.clear()
            self.bytes_up = self.bytes_down = 0

    def snapshot(self) -> tuple[Counter[tuple[str, str]], int, int]:
        """A consistent copy of (counts, bytes_up, bytes_down)."""
        with self._lock:
            return Counter(self.counts), self.bytes_up, self.bytes_down

    def _decide(self, method: str) -> tuple[str, float]:
        with self._lock:
            # One random stream per method: the n-th PUT gets the same fault in every run with
            # this seed, however the requests of other methods interleave with it.
            rng = self._streams.setdefault(method, random.Random(f"{self._seed}:{method}"))
            fault = self._plan.draw(rng, method)
            delay = rng.uniform(0, self._plan.max_delay) if fault == "slow" else 0.0
            if fault == "late":
                delay = -1.0 if self._plan.late_delay is None else self._plan.late_delay
            self.counts[(method, fault)] += 1
        return fault, delay

    def _count(self, up: int, down: int) -> None:
        with self._lock:
            self.bytes_up += up
            self.bytes_down += down

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits
        # for the client's delayed ACK (about 40 ms a response on Linux).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._relay()

        do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

        def _relay(self) -> None:
            body = self._read_body()
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
            up = len(self.requestline) + 4 + len(body)
            up += sum(len(k) + len(v) + 4 for k, v in self.headers.items())
            fault, delay = proxy._decide(self.command)
            if fault == "late":
                self._reply_error(500, "InternalError", "We encountered an internal error.", up)
                # The handler serves the connection's next request meanwhile: pass what to send.
                request = (headers, body, self.command, self.path)
                late = threading.Timer(max(delay, 0.0), self._forward, request)
                late.daemon = True
                if delay < 0:
                    proxy._hold(late)
                else:
                    late.start()
                return
            if delay:
                time.sleep(delay)
            if fault == "unavailable":
                self._reply_error(503, "SlowDown", "Please reduce your request rate.", up)
                return
            if fault == "conflict":
                self._reply_error(409, "ConditionalRequestConflict", "A conflicting operation occurred.", up)
                return
            status, reason, response_headers, response_body = self._forward(headers, body)
            if fault == "drop_after":
                proxy._count(up, 0)
                self.close_connection = True  # the server applied it; the client never hears
                return
            if fault == "error_after":
                self._reply_error(500, "InternalError", "We encountered an internal error.", up)
                return
            self.send_response_only(status, reason)
            down = len(reason) + 15
            for name, value in response_headers:
                lowered = name.lower()
                if lowered in _HOP_BY_HOP or (lowered == "content-length" and self.command != "HEAD"):
                    continue
                self.send_header(name, value)
                down += len(name) + len(value) + 4
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(response_body)))
                down += 20 + len(str(len(response_body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response_body)
            proxy._count(up, down + 2 + len(response_body))

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _forward(
            self,
            headers: list[tuple[str, str]],
            body: bytes,
            method: str | None = None,
            path: str | None = None,
        ) -> tuple[int, str, list[tuple[str, str]], bytes]:
            method = method or self.command
            connection = http.client.HTTPConnection(proxy.upstream, timeout=120)
            try:
                connection.putrequest(method, path or self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    if name.lower() != "content-length":
                        connection.putheader(name, value)
                if body or method in ("PUT", "POST"):
                    connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body or None)
                response = connection.getresponse()
                data = response.read()
                return response.status, response.reason, response.getheaders(), data
            finally:
                connection.close()

        def _reply_error(self, status: int, code: str, message: str, up: int) -> None:
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
            ).encode()
            self.send_response_only(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            proxy._count(up, 100 + len(body))

    return Handler


# -- `python3 -m metafuse.objectstore.testing serve` ------------------------------------------------

TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""Dummy credentials for the test server: moto accepts any, boto3 insists on having some."""


def main(argv: list[str] | None = None) -> int:
    """`serve`: run the single-threaded moto S3 server on loopback until Ctrl-C or SIGTERM.

    Prints the endpoint, creates each `--bucket`, then prints the environment to export in
    another shell and a catalog URL per bucket. Bad input, a port that cannot be bound or a
    missing `moto[server]` is one line on stderr and exit 2.
    """
    import argparse  # noqa: PLC0415 - only the command needs it
    import shlex  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from .._cli_base import OneLineParser, discard_stdout, whole_number  # noqa: PLC0415
    from ._moto_single import moto_server  # noqa: PLC0415

    prog = "python3 -m metafuse.objectstore.testing"
    parser = OneLineParser(prog=prog, description="Test servers for the object-store catalog.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    serve = commands.add_parser(
        "serve",
        help="run moto's S3 server on loopback, one request at a time (the tests' server)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Ctrl-C or SIGTERM stops it; its buckets and objects live in memory and go with it.",
    )
    serve.add_argument(
        "--port", type=whole_number(0, 65535), default=0, help="loopback port (default 0: a free one)"
    )
    serve.add_argument(
        "--bucket",
        action="append",
        default=[],
        type=_bucket_name,
        metavar="NAME",
        help="create this bucket (repeatable)",
    )
    args = parser.parse_args(argv)
    host = "127.0.0.1"
    try:
        if args.port:  # werkzeug would print its own paragraph and exit 1 for a port in use
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
                probe.bind((host, args.port))
        server = moto_server(host, args.port)
    except ImportError:
        print(f"{prog}: error: moto's server is not installed: {MOTO_INSTALL}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{prog}: error: cannot listen on {host}:{args.port} ({error.strerror})", file=sys.stderr)
        return 2
    endpoint = f"http://{host}:{server.server_port}"
    failed: list[str] = []

    def announce() -> None:
        """Create the buckets through the running server, then say how to use it."""
        say(f"S3 test server (moto, one request at a time) at {endpoint}; Ctrl-C stops it")
        if failed:
            return
        for bucket in args.bucket:
            try:
                status = _http_status(endpoint, "PUT", f"/{bucket}")
            except OSError as error:
                status, reason = 0, str(error)
            else:
                reason = f"HTTP {status}"
            if not 200 <= status < 300:
                failed.append(f"cannot create bucket {bucket!r} ({reason})")
                stopping.set()
                return
        exports = " ".join(f"{name}={value}" for name, value in TEST_CREDENTIALS.items())
        lines = [f"created bucket {bucket}" for bucket in args.bucket]
        lines += ["In another shell:", f"export {exports}"]
        where = f"endpoint_url={endpoint}&region={TEST_CREDENTIALS['AWS_DEFAULT_REGION']}"
        if args.bucket:
            lines.append(f"export METAFUSE_S3_TEST_URL={shlex.quote(f's3://{args.bucket[0]}/tests?{where}')}")
            lines += [
                f"python3 -m metafuse --catalog {shlex.quote(f's3://{bucket}/catalog?{where}')} init"
                for bucket in args.bucket
            ]
        else:
            lines.append("no bucket yet: --bucket NAME creates one")
        say("\n".join(lines))

    def say(text: str) -> None:
        """Print `text`; output that cannot be written stops the server (exit 2, one line)."""
        try:
            print(text, flush=True)
        except OSError as error:
            failed.append(f"cannot write to standard output ({error.strerror or error})")
            discard_stdout()
            stopping.set()

    # The server answers from a thread of its own, so a signal only sets `stopping`, whenever it
    # comes: a KeyboardInterrupt raised in the main thread before it had entered the serving
    # loop would end the process by SIGINT instead of a clean stop.
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    serving = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
    serving.start()
    try:
        announce()
        while not stopping.wait(0.2):
            pass
    finally:
        server.shutdown()
        serving.join()
        server.server_close()
    if failed:
        print(f"{prog}: error: {failed[0]}", file=sys.stderr)
        return 2
    return 0


def _bucket_name(text: str) -> str:
    """An argparse `type`: `text` if it is a bucket name S3 (and a catalog URL) accepts."""
    import argparse  # noqa: PLC0415

    from .errors import InvalidStoreURL  # noqa: PLC0415
    from .url import parse_s3_url  # noqa: PLC0415

    try:
        parse_s3_url(f"s3://{text}/catalog")
    except InvalidStoreURL as error:
        raise argparse.ArgumentTypeError(error.problem) from None
    return text


if __name__ == "__main__":
    sys.exit(main())
