"""How a scenario is declared: a client function, its setup, and its invariants beside it.

```python
@scenario("my_scenario", title="my", summary="What it stresses.")
def my_scenario(ctx: ClientContext) -> None:
    while not ctx.should_stop():
        ctx.call("read", ctx.catalog.get, "some.dataset")

@my_scenario.invariant("no_errors", "no operation failed unexpectedly")
def _no_errors(run: RunView) -> Verdict:
    errors = run.merged.total("error")
    return errors == 0, f"{errors} errors"
```
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any, Optional

from ..catalog import Catalog
from .client import ClientContext
from .config import StressConfig
from .recorder import Recorder

Verdict = tuple[Optional[bool], str]
"""An invariant's answer: whether it held (None: inconclusive, see `inconclusive`), and the
figures that show it."""


def inconclusive(detail: str) -> Verdict:
    """The answer of an invariant that needs some progress and did not get it (an overloaded
    machine ran too few operations to judge): never a pass, never a failure. `detail` says what
    progress was missing."""
    return None, detail


@dataclasses.dataclass(frozen=True)
class SetupContext:
    """What a scenario's setup sees: the resolved size of the run and a seeded generator."""

    clients: int
    duration: int
    seed: int
    rng: random.Random
    path: str
    config: StressConfig


@dataclasses.dataclass
class RunView:
    """What invariants and metrics see once every client has stopped."""

    scenario: str
    mode: str
    clients: int
    duration: int
    seed: int
    shared: dict[str, Any]
    recorders: list[Recorder]
    merged: Recorder
    reports: Any
    catalog: Catalog
    elapsed: float
    hung: list[int]
    crashed: list[int]
    killed: list[int]
    fd_before: int
    fd_after: int

    def metric_sum(self, key: str) -> int:
        """Add up one per-client metric (`ctx.recorder.metrics[key]`) over every client."""
        return sum(int(recorder.metrics.get(key, 0)) for recorder in self.recorders)

    def metric_max(self, key: str) -> int:
        """The largest value of one per-client metric over every client."""
        return max((int(recorder.metrics.get(key, 0)) for recorder in self.recorders), default=0)

    def no_stale_reads(self) -> Verdict:
        """The freshness verdict: clients counted no stale read (metrics `stale_reads` and
        `max_versions_behind`, each client checking reads against writes acknowledged before them)."""
        stale = self.metric_sum("stale_reads")
        return (
            stale == 0,
            f"{stale} stale reads, up to {self.metric_max('max_versions_behind')} versions behind",
        )

    def no_unexpected_errors(self, *counted: str) -> Verdict:
        """The verdict most scenarios need: no operation ended in an unexpected error, and none
        was counted in the clients' `counted` metrics (errors of work outside the history)."""
        errors = self.merged.total("error") + sum(self.metric_sum(name) for name in counted)
        first = f", first: {self.merged.errors[0]}" if errors and self.merged.errors else ""
        return errors == 0, f"{errors} errors{first}"


@dataclasses.dataclass(frozen=True)
class Invariant:
    """A named promise and the function that checks it."""

    name: str
    promise: str
    check: Callable[[RunView], Verdict]


@dataclasses.dataclass(frozen=True)
class InvariantResult:
    """An invariant's verdict in one run: `ok` when it held; when it did not, `inconclusive`
    says whether the run made too little progress to judge it (not a failure) or it failed."""

    name: str
    promise: str
    ok: bool
    detail: str
    inconclusive: bool = False

    @property
    def failed(self) -> bool:
        """Whether the invariant was judged and did not hold."""
        return not self.ok and not self.inconclusive


Headline = Callable[[dict[str, Any]], "list[tuple[str, Any]]"]


@dataclasses.dataclass
class Scenario:
    """A registered scenario; see the module docstring for how to declare one."""

    name: str
    title: str
    summary: str
    client: Callable[[ClientContext], None]
    setup: Callable[[Catalog, SetupContext], dict[str, Any]] = lambda catalog, ctx: {}
    default_clients: Optional[int] = None  # noqa: UP045 - evaluated at runtime on Python 3.9
    default_duration: Optional[int] = None  # noqa: UP045
    always_process: bool = False
    shared_catalog: bool = True
    catalogs: str = "shared"
    """Thread mode: how clients get their Catalog (`config.CATALOGS`) unless a run says otherwise."""
    own_catalogs: bool = False
    """Whether every client needs a Catalog of its own in both modes (`catalogs` is then
    `per-client`, and a run's `--catalogs` does not change it)."""
    history_checked: bool = False
    """Whether every run records a history (`ctx.record`) and judges it linearizable: the invariant
    `linearizable`, added by the runner, backs the scenario's own."""
    file_only: Optional[str] = None  # noqa: UP045
    """Why this scenario needs a catalog file and cannot run on an object store (None: it can)."""
    store_only: Optional[str] = None  # noqa: UP045
    """Why this scenario needs a catalog on an object store (None: a file will do). Without a
    store URL it runs on a temporary `log+file://` directory."""
    invariants: list[Invariant] = dataclasses.field(default_factory=list)
    metrics: Callable[[RunView], dict[str, Any]] = lambda run: {}
    headline: Headline = lambda result: []
    driver: Optional[Callable[[Any], None]] = None  # noqa: UP045
    report_sink: Callable[[], Any] = list
    """Makes what `ctx.report` values are appended to (a list, or a structure that folds them)."""

    @property
    def test_name(self) -> str:
        """The pytest test that runs this scenario."""
        return f"test_{self.name}"

    def invariant(self, name: str, promise: str) -> Callable[[Callable[[RunView], Verdict]], Any]:
        """Declare an invariant of this scenario (decorator)."""

        def register(check: Callable[[RunView], Verdict]) -> Callable[[RunView], Verdict]:
            self.invariants.append(Invariant(name, promise, check))
            return check

        return register


REGISTRY: dict[str, Scenario] = {}
"""Every registered scenario by name, in registration order."""


def scenario(
    name: str,
    *,
    title: str,
    summary: str,
    setup: Callable[[Catalog, SetupContext], dict[str, Any]] | None = None,
    default_clients: int | None = None,
    default_duration: int | None = None,
    always_process: bool = False,
    shared_catalog: bool = True,
    catalogs: str = "shared",
    own_catalogs: bool = False,
    history_checked: bool = False,
    file_only: str | None = None,
    store_only: str | None = None,
) -> Callable[[Callable[[ClientContext], None]], Scenario]:
    """Register the decorated client function as scenario `name`.

    `setup(catalog, setup_context)` runs once before the clients and returns plain data that
    every client sees as `ctx.shared`. `shared_catalog=False` gives clients no `ctx.catalog`
    (they open their own); `always_process=True` runs clients as processes in either mode.
    `catalogs` is how thread-mode clients get their Catalog: `shared` (one for all), `per-client`
    or `mixed` (every other client owns one). `own_catalogs=True` gives every client a Catalog of
    its own in both modes, whatever a run's `--catalogs` says; like every catalog the runner opens
    for its clients, it is opened before the run's clock starts, so opening it takes no time from
    the run. `history_checked=True` records every run's history and checks it is linearizable (for
    scenarios that `ctx.record` their reads and writes). `file_only` says why the scenario cannot
    run against a catalog on an object store, and `store_only` why it needs one (it then runs on a temporary
    directory store by default).
    """

    def register(client: Callable[[ClientContext], None]) -> Scenario:
        if name in REGISTRY:
            raise ValueError(f"scenario {name!r} is already registered")
        declared = Scenario(
            name=name,
            title=title,
            summary=summary,
            client=client,
            default_clients=default_clients,
            default_duration=default_duration,
            always_process=always_process,
            shared_catalog=shared_catalog,
            catalogs="per-client" if own_catalogs else catalogs,
            own_catalogs=own_catalogs,
            history_checked=history_checked,
            file_only=file_only,
            store_only=store_only,
        )
        if setup is not None:
            declared.setup = setup
        REGISTRY[name] = declared
        return declared

    return register
