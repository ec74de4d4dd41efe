"""Verdicts of mutation runs: a catch counts only beside a green control; the table and exit status.

A run of one mutant in one mode is caught when a scenario (or selfcheck) it ran went red while
the same step on unmutated code, with the same seed and settings, stayed green; a red control
makes the run INCONCLUSIVE.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence

from mutation_rules import Mutant

# -- verdicts -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step:
    """What one scenario (or selfcheck) run said: the invariants that failed, those it could not
    judge, what each failed invariant said (`details`), and an error when it gave no result (it
    raised, or the worker timed out)."""

    scenario: str
    failed: tuple[str, ...] = ()
    inconclusive: tuple[str, ...] = ()
    error: str = ""
    details: tuple[str, ...] = ()

    @property
    def red(self) -> bool:
        """Whether this run would turn the suite red."""
        return bool(self.failed or self.error)

    def reasons(self) -> list[str]:
        """The invariants (or the error) that made it red, as `scenario.invariant`."""
        if self.error:
            return [f"{self.scenario}: {self.error}"]
        return [f"{self.scenario}.{name}" for name in self.failed]

    def explained(self) -> list[str]:
        """Like `reasons`, each with what the invariant said, so a red control can be looked into."""
        if self.error or not self.details:
            return self.reasons()
        return [f"{self.scenario}.{detail}" for detail in self.details]


@dataclasses.dataclass(frozen=True)
class RunVerdict:
    """One run of one mutant in one mode, judged beside its control."""

    mutant: str
    mode: str
    seed: int
    outcome: str
    """"caught", "survived" or "inconclusive"."""
    caught_by: tuple[str, ...] = ()
    detail: str = ""


def judge(mutant: str, mode: str, seed: int, steps: Sequence[Step], controls: dict[str, Step]) -> RunVerdict:
    """Judge one run from its steps and the control step of each scenario it ran.

    Caught: a step was red while its control was not red. A red control of any scenario the run
    used makes it inconclusive (a catch beside a red control proves nothing, and a miss beside
    one says nothing either), as does a run that stayed green but could not judge an invariant.
    """
    red_controls = [reason for step in steps for reason in controls[step.scenario].explained()]
    caught = [reason for step in steps if step.red for reason in step.reasons()]
    if red_controls:
        seen = f"red: {'; '.join(caught)}" if caught else f"green: {', '.join(s.scenario for s in steps)}"
        detail = f"control red: {'; '.join(red_controls)}; the mutant was {seen}"
        return RunVerdict(mutant, mode, seed, "inconclusive", detail=detail)
    if caught:
        return RunVerdict(mutant, mode, seed, "caught", tuple(caught))
    unjudged = [f"{step.scenario}.{name}" for step in steps for name in step.inconclusive]
    unjudged += [
        f"control {s.scenario}.{n}" for s in (controls[t.scenario] for t in steps) for n in s.inconclusive
    ]
    if unjudged:
        return RunVerdict(mutant, mode, seed, "inconclusive", detail="not judged: " + ", ".join(unjudged))
    return RunVerdict(mutant, mode, seed, "survived", detail="green: " + ", ".join(s.scenario for s in steps))


@dataclasses.dataclass
class Row:
    """One mutant in one mode over all its runs."""

    mutant: str
    mode: str
    runs: list[RunVerdict] = dataclasses.field(default_factory=list)

    @property
    def caught(self) -> int:
        """Runs in which the mutant was caught."""
        return sum(run.outcome == "caught" for run in self.runs)

    @property
    def verdict(self) -> str:
        """SURVIVED if it survived a run, else INCONCLUSIVE if a run was, else CAUGHT."""
        outcomes = {run.outcome for run in self.runs}
        if "survived" in outcomes:
            return "SURVIVED"
        if "inconclusive" in outcomes or not self.runs:
            return "INCONCLUSIVE"
        return "CAUGHT"

    def caught_by(self) -> list[str]:
        """Each invariant that caught the mutant, with in how many runs, most frequent first."""
        counts = collections.Counter(reason for run in self.runs for reason in run.caught_by)
        return [
            f"{reason} ({count})" if len(self.runs) > 1 else reason for reason, count in counts.most_common()
        ]


def rows_of(verdicts: Iterable[RunVerdict]) -> list[Row]:
    """Group run verdicts into rows, in the order their mutant and mode first appear."""
    rows: dict[tuple[str, str], Row] = {}
    for verdict in verdicts:
        rows.setdefault((verdict.mutant, verdict.mode), Row(verdict.mutant, verdict.mode)).runs.append(
            verdict
        )
    return list(rows.values())


def exit_status(rows: Sequence[Row]) -> int:
    """0 when every row was caught in every run, else 1."""
    return 0 if rows and all(row.verdict == "CAUGHT" for row in rows) else 1


def table(rows: Sequence[Row]) -> str:
    """The rows as text for people, with each miss's and each inconclusive run's detail."""
    lines = [f"{'mutant':<30} {'mode':<8} {'verdict':<13} {'caught':<7} by"]
    for row in rows:
        lines.append(
            f"{row.mutant:<30} {row.mode:<8} {row.verdict:<13} {row.caught}/{len(row.runs):<5}"
            f" {', '.join(row.caught_by()) or '-'}"
        )
        for run in row.runs:
            if run.outcome != "caught":
                lines.append(f"    seed {run.seed}: {run.outcome.upper()} ({run.detail})")
    return "\n".join(lines)


def markdown(rows: Sequence[Row], mutants: Sequence[Mutant], command: str, when: str) -> str:
    """The rows as a Markdown table, one line per mutant with both modes, for the docs."""
    bugs = {m.name: m.bug for m in mutants}
    by_mutant: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_mutant.setdefault(row.mutant, {})[row.mode] = row

    def cell(row: Row | None) -> str:
        if row is None:
            return "not run"
        by = ", ".join(f"`{reason}`" for reason in row.caught_by())
        head = f"{row.verdict.lower()} {row.caught}/{len(row.runs)}"
        return f"{head}: {by}" if by else head

    lines = [
        f"`{command}`, {when}.",
        "",
        "| mutant | planted bug | thread | process |",
        "|---|---|---|---|",
    ]
    for name, modes in by_mutant.items():
        lines.append(
            f"| `{name}` | {bugs.get(name, '')} | {cell(modes.get('thread'))}"
            f" | {cell(modes.get('process'))} |"
        )
    return "\n".join(lines) + "\n"
