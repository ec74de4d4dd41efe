"""Clients as threads of this process: their catalogs, their start, the watchdog, their records.

Owns `ThreadRun`. A hung thread cannot be killed: it is reported and the catalogs it may still be
using are closed only once it ends. Judges nothing (`_run_verdicts` does) and never touches the
process run's shared memory or pipes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import MutableSequence

from ..catalog import Catalog
from . import _watchdog
from ._client_run import ClientRun, Outcome, run_client
from ._run_settings import catalogs_shape, own_catalog
from .client import Board, ClientContext
from .gate import BarrierGate, Flag
from .resources import RssProbe

log = logging.getLogger("metafuse.stress")


class ThreadRun(ClientRun):
    """Runs the clients as daemon threads sharing this process (and, by shape, one catalog)."""

    def run(self) -> Outcome:
        """Start every client, wait for them up to the watchdog, and collect their records."""
        shape = catalogs_shape(self.scenario, self.config)
        owned = [own_catalog(shape, client) for client in range(self.clients)]
        catalog = (
            Catalog.open(self.path, synchronous=self.config.synchronous)
            if shape is not None and not all(owned)
            else None
        )
        # Several catalogs on one file in one process is a real application shape, and the only
        # one in which thread mode crosses the freshness check between catalogs on every read.
        own = [
            Catalog.open(self.path, synchronous=self.config.synchronous) if mine else None for mine in owned
        ]
        live: MutableSequence[int] = [0] * (3 * self.clients)
        stop = threading.Event()
        gate = BarrierGate(threading.Barrier(self.clients), Flag())
        board = Board([0] * Board.SIZE, threading.Lock())
        reports = self.scenario.report_sink()
        start = time.monotonic()
        deadline = start + self.duration
        contexts = [
            ClientContext(
                client=client,
                clients=self.clients,
                mode="thread",
                path=self.path,
                catalog=own[client] or catalog,
                shared=self.shared,
                seed=self.config.seed,
                start=start,
                deadline=deadline,
                record=self.config.record,
                live=live,
                gate=gate,
                report=reports.append,
                stopped=stop.is_set,
                board=board,
                history=self.config.history,
                rate=self.config.rate,
                ramp_up=self.config.ramp_up,
                warmup=self.config.warmup,
            )
            for client in range(self.clients)
        ]
        threads = [
            threading.Thread(
                target=run_client, args=(self.scenario, ctx), name=f"stress-{ctx.client}", daemon=True
            )
            for ctx in contexts
        ]
        probe = RssProbe(self.duration)
        interrupted = False
        try:
            # Taken before the clients start: the threads started from here on are theirs.
            watch = _watchdog.Watchdog(deadline, _watchdog.ThreadClientsProgress(live))
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads) and not watch.expired(time.monotonic()):
                for thread in threads:
                    thread.join(0.05)
                    self.meter.update(live, time.monotonic() - start)
        except KeyboardInterrupt:  # stop the clients and report what they did (a second Ctrl-C aborts)
            interrupted = True
            stop.set()
            gate.abort()
            for thread in threads:
                thread.join(_watchdog.WATCHDOG_GRACE / len(threads))
        elapsed = min(time.monotonic(), deadline) - start
        rss = probe.finish()
        hung = [index for index, thread in enumerate(threads) if thread.is_alive()]
        if hung:
            stop.set()
            gate.abort()
            log.warning("%s: clients %s still running after the watchdog", self.scenario.name, hung)
        # A hung client may still be inside the shared catalog: closing it under that client
        # would turn a reported hang into a crash or a half-finished call. Leave it open (its
        # descriptors then show in the leak count, next to the hang that explains them), and
        # close it once the hung clients have finished, if they ever do.
        if catalog is not None and not hung:
            catalog.close()
        elif catalog is not None:
            _close_after(catalog, [threads[index] for index in hung])
        for index, mine in enumerate(own):
            if mine is not None and index not in hung:
                mine.close()
            elif mine is not None:
                _close_after(mine, [threads[index]])
        recorders = [ctx.recorder for ctx in contexts]
        crashed = [r.client for r in recorders if not r.finished and r.client not in hung]
        return Outcome(
            recorders,
            reports,
            elapsed,
            hung,
            crashed,
            [],
            rss,
            left_open=bool(hung) and (catalog is not None or any(own[index] for index in hung)),
            interrupted=interrupted,
        )


def _close_after(catalog: Catalog, threads: list[threading.Thread]) -> None:
    """Close `catalog` from a background thread once every one of `threads` has ended."""

    def close_when_done() -> None:
        for thread in threads:
            thread.join()
        catalog.close()

    threading.Thread(target=close_when_done, name="stress-close-after-hang", daemon=True).start()
