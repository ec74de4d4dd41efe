"""The one-request-at-a-time moto server: a client that connects and says nothing cannot hold it."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from metafuse.objectstore._moto_single import moto_server


def test_a_silent_connection_is_dropped_and_the_next_request_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOTO_PORT", "0")  # moto_server sets it; restored after the test
    server = moto_server("127.0.0.1", 0, idle_timeout=1.0)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    port = server.server_port
    try:
        # Connected first, so accepted first: the server reads from it before anything else.
        with socket.create_connection(("127.0.0.1", port), timeout=60) as silent:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                # Without a per-connection timeout the server would wait on `silent` for ever
                # and this request would end in the client's own timeout instead.
                connection.request("GET", "/")
                assert connection.getresponse().status < 500
            finally:
                connection.close()
            assert silent.recv(1) == b""  # the server closed it
    finally:
        server.shutdown()
        server.server_close()
