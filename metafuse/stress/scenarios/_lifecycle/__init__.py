"""The machinery of the `lifecycle` scenario, one concept a module, in the order they build on each other.

- `timing`: every bound on how long a step of a run may take, in one place.
- `datasets`: which datasets each client writes, one writer each.
- `calls`: how a working thread records its calls (`Caller`, `Tally`).
- `shelf`: the catalog a group of threads shares, closed and replaced under them (`Shelf`), and
  the single-threaded check that a closed catalog refuses calls.
- `worker`: one working thread's calls and what it may conclude from them (`Worker`).
- `quiet`: the board that parks every working thread of a run at a safe point (`Quiet`).
- `holder`: a thread that holds a write transaction open until a fork releases it (`LockHolder`).
- `fork`: one fork round and its child's checks (`Forker`, `wait_child`).
- `helper`: thread mode's spawned process that runs the fork rounds the test process must not.
- `clients`: the two client loops, thread mode and process mode, built from the above.

Nothing here declares a scenario or an invariant: `..lifecycle` does, and it alone imports
`clients`. No module imports one listed after it.
"""
