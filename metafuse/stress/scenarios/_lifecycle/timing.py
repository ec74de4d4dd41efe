"""How long each step of a lifecycle run may wait: every bound in one place.

Kept together so they can be read against each other and against the runner's watchdog grace
(5 s past a run's end, see `FIRST_ROUND_OVERRUN`). Constants only; imports nothing.
"""

from __future__ import annotations

CHILD_TIMEOUT = 3.0
"""Seconds a forked child gets to exit before it is killed and counted as hung."""
HOLD_SECONDS = 10.0
"""Seconds the lock holder keeps its transaction open at most, if no fork comes to release it."""
FORK_SLOT = 1.5
"""Seconds of each process client's turn to fork (client 0 first): a fork holds the write lock
while it waits for the transaction it interrupts, so forks by every process at once would keep
each other's threads from reaching their safe points."""
QUIESCE_TIMEOUT = 1.0
"""Seconds to wait for working threads to pause, or the lock holder to hold, before a fork is skipped."""
FIRST_ROUND_OVERRUN = 1.0
"""Seconds past the run's end the first fork round may still wait to set up: with the child's own
`CHILD_TIMEOUT` after it, the client still ends within the runner's 5 s watchdog grace."""
HELPER_READY_TIMEOUT = 120.0
"""Seconds setup waits for the thread-mode helper to start: only a broken machine takes that long."""
