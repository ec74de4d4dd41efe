"""`python3 -m metafuse.objectstore.testing serve`: the documented S3 test server, used as a
reader of docs/object-store.md would use it, from another process."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from metafuse.objectstore.testing import TEST_CREDENTIALS

ROOT = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "-m", "metafuse.objectstore.testing", "serve"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFUSE_", "AWS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return env


@contextmanager
def _serving(*argv: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """The server, and its lines up to the last one it prints before it just serves."""
    with subprocess.Popen(
        [*SERVE, *argv], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        lines = []
        try:
            for line in server.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith(("python3 -m metafuse", "no bucket yet")):
                    break
            yield server, lines
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            server.wait(30)


def _metafuse(*argv: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metafuse", *argv],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serve_prints_what_to_export_and_its_bucket_holds_a_catalog() -> None:
    with _serving("--bucket", "quickstart") as (server, lines):
        assert lines[0].startswith("S3 test server (moto, one request at a time) at http://127.0.0.1:")
        assert "created bucket quickstart" in lines
        exports = [shlex.split(line)[1:] for line in lines if line.startswith("export ")]
        environ = _env() | dict(word.split("=", 1) for words in exports for word in words)
        assert {name: environ[name] for name in TEST_CREDENTIALS} == TEST_CREDENTIALS
        assert environ["METAFUSE_S3_TEST_URL"].startswith(
            "s3://quickstart/tests?endpoint_url=http://127.0.0.1:"
        )
        init = shlex.split(lines[-1])
        assert init[:3] == ["python3", "-m", "metafuse"]
        catalog = init[4]
        assert _metafuse(*init[3:], environ=environ).returncode == 0
        put = _metafuse("--catalog", catalog, "put", str(ROOT / "examples" / "dataset.json"), environ=environ)
        assert put.returncode == 0, put.stderr
        got = _metafuse("--catalog", catalog, "get", "sales.orders", "--json", environ=environ)
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["version"] == 1
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
        assert server.stderr is not None
        assert server.stderr.read() == ""


def test_serve_without_a_bucket_says_how_to_make_one() -> None:
    with _serving() as (server, lines):
        assert lines[-1] == "no bucket yet: --bucket NAME creates one"
        server.send_signal(signal.SIGINT)
        assert server.wait(30) == 0


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*SERVE, "--port", str(port)], env=_env(), capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 2
    assert done.stderr == (
        f"python3 -m metafuse.objectstore.testing: error: cannot listen on 127.0.0.1:{port}"
        " (Address already in use)\n"
    )


def test_a_bad_bucket_name_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [*SERVE, "--bucket", "Not_A_Bucket"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "--bucket: bucket 'Not_A_Bucket': 3-63 lowercase letters" in done.stderr


def test_output_to_a_full_disk_stops_the_server_with_one_line() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*SERVE, "--bucket", "full"],
            env=_env(),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr == (
        "python3 -m metafuse.objectstore.testing: error: cannot write to standard output"
        " (No space left on device)\n"
    )
