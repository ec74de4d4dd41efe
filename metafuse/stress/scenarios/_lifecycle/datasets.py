"""Which datasets each lifecycle client writes: one per working thread, and one each for its lock
holder and its forked children.

Each dataset has exactly one writer at a time, so that writer knows what it had acknowledged and
the invariants can demand exactly that at the end.

It imports nothing and touches no catalog: it only names the datasets.
"""

from __future__ import annotations

WORKERS = 2
"""Working threads inside each client process (process mode)."""


def dataset_names(client: int) -> dict[str, str]:
    """The datasets client `client` writes: one per working thread, its lock holder's, its children's."""
    base = f"stress.life.{client}"
    names = {f"w{index}": f"{base}.w{index}" for index in range(WORKERS)}
    names.update(hold=f"{base}.hold", fork=f"{base}.fork")
    return names
