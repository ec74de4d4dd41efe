"""Machine outputs of a stress run beside the JSON: a per-second CSV and JUnit XML for CI.

Every output path is checked before the run starts (`check_output_path`), so a typo cannot throw
away a long run's results at the end. Files are written atomically: a reader never sees half of one.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ..errors import ValidationError
from .result import SERIES_COLUMNS, ScenarioResult
from .thresholds import ThresholdResult


def check_output_path(path: str, option: str) -> None:
    """Refuse (`ValidationError` naming `option`) a path that cannot be written: empty, a
    directory, or under something that is not a writable directory. Creates nothing."""
    if not path.strip():
        raise ValidationError(option, "must name a file, not an empty string", path)
    if os.path.isdir(path):
        raise ValidationError(f"{option} {path}", "names a directory; give a file name inside it")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):  # the folders that are missing will be created
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValidationError(f"{option} {path}", f"cannot be created: {parent} is not a directory")
    try:
        handle, probe = tempfile.mkstemp(prefix=".metafuse-probe-", dir=parent)
    except OSError as error:
        raise ValidationError(
            f"{option} {path}", f"cannot be written ({error.strerror} in {parent})"
        ) from None
    os.close(handle)
    os.unlink(probe)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ValidationError(f"{option} {path}", "is not writable")


def add_html_option(parser: argparse.ArgumentParser) -> None:
    """Add `--html FILE` to `parser` (the one definition every stress command shares); the value
    lands in `args.html`, None when not given."""
    parser.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained HTML report to FILE (open it in any browser, offline)",
    )


def write_text(path: str, text: str) -> None:
    """Write `text` to `path` atomically, creating missing folders."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.replace(temporary, path)


def csv_text(results: Sequence[ScenarioResult]) -> str:
    """Return the per-second series of every result as CSV: one row per scenario, second and
    operation (complete seconds only), with the columns of `SERIES_COLUMNS` after the run's keys."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["scenario", "mode", "clients", *SERIES_COLUMNS])
    for result in results:
        for row in result.series:
            writer.writerow(
                [
                    result.scenario,
                    result.mode,
                    result.clients,
                    *("" if row.get(column) is None else row[column] for column in SERIES_COLUMNS),
                ]
            )
    return out.getvalue()


def junit_text(results: Sequence[ScenarioResult], unmatched: Sequence[ThresholdResult] = ()) -> str:
    """Return JUnit XML: a test suite per scenario run, a test case per invariant and threshold.

    A failed invariant or threshold is a `<failure>` whose text is its detail and the command
    that reproduces the run, so CI systems show both without opening the logs. An inconclusive
    invariant (too little progress to judge it) is `<skipped>` with the same text: not a pass.
    """
    suites = ET.Element("testsuites", name="metafuse stress")
    totals = [0, 0, 0.0, 0]
    for result in results:
        suite = ET.SubElement(suites, "testsuite", name=_suite_name(result))
        properties = ET.SubElement(suite, "properties")
        for key, value in (
            ("seed", result.seed),
            ("clients", result.clients),
            ("duration", result.duration),
            ("mode", result.mode),
            ("interrupted", result.interrupted),
        ):
            ET.SubElement(properties, "property", name=key, value=str(value).lower())
        cases = 0
        failures = 0
        skipped = 0
        for invariant in result.invariants:
            cases += 1
            if invariant.inconclusive:
                skipped += _inconclusive(suite, result, invariant.name, invariant.detail)
                continue
            failures += _case(suite, result, f"invariant {invariant.name}", invariant.ok, invariant.detail)
        for verdict in result.thresholds:
            cases += 1
            failures += _case(suite, result, f"threshold {verdict.threshold}", verdict.passed, verdict.detail)
        suite.set("tests", str(cases))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", str(skipped))
        suite.set("time", f"{result.elapsed:.3f}")
        totals[0] += cases
        totals[1] += failures
        totals[2] += result.elapsed
        totals[3] += skipped
    if unmatched:
        suite = ET.SubElement(suites, "testsuite", name="thresholds", tests=str(len(unmatched)))
        suite.set("failures", str(len(unmatched)))
        suite.set("errors", "0")
        for verdict in unmatched:
            case = ET.SubElement(
                suite, "testcase", classname="thresholds", name=f"threshold {verdict.threshold}"
            )
            ET.SubElement(case, "failure", message=verdict.detail).text = verdict.detail
        totals[0] += len(unmatched)
        totals[1] += len(unmatched)
    suites.set("tests", str(totals[0]))
    suites.set("failures", str(totals[1]))
    suites.set("errors", "0")
    suites.set("skipped", str(totals[3]))
    suites.set("time", f"{totals[2]:.3f}")
    ET.indent(suites)  # Python 3.9+
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _suite_name(result: ScenarioResult) -> str:
    clients = "1 client" if result.clients == 1 else f"{result.clients} clients"
    return f"{result.scenario} ({result.mode}, {clients}, {result.duration}s)"


def _inconclusive(suite: ET.Element, result: ScenarioResult, name: str, detail: str) -> int:
    case = ET.SubElement(suite, "testcase", classname=f"stress.{result.scenario}", name=f"invariant {name}")
    message = f"inconclusive: {detail}"
    text = message if not result.command else f"{message}\nReproduce with: {result.command}"
    ET.SubElement(case, "skipped", message=message).text = text
    return 1


def _case(suite: ET.Element, result: ScenarioResult, name: str, ok: bool, detail: str) -> int:
    case = ET.SubElement(suite, "testcase", classname=f"stress.{result.scenario}", name=name)
    if ok:
        ET.SubElement(case, "system-out").text = detail
        return 0
    text = detail if not result.command else f"{detail}\nReproduce with: {result.command}"
    ET.SubElement(case, "failure", message=detail).text = text
    return 1
