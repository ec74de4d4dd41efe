"""Write the sample outputs in README.md and docs/stress-testing.md from real runs.

Each sample sits between `<!-- sample: NAME -->` and `<!-- /sample -->` in a doc and is the
output of one real command, run here: a stress run, `stress run --help`, the README's library
example. Usage, from the repository root:

    python tools/render_samples.py            # run every sample, rewrite the docs (about 1 minute)
    python tools/render_samples.py --check    # exit 1 if a doc's samples differ in shape from a quick run

`tests/unit/test_docs.py` runs the samples with tiny durations and checks that the docs have the
same shape (numbers, which vary from run to run, are normalised), so a change to a report's
layout fails the tests until this script is run again.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"(<!-- sample: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /sample -->)", re.S)


@dataclasses.dataclass(frozen=True)
class Sample:
    """One generated output: the command shown in the doc, and a quick variant for the tests."""

    name: str
    doc: str
    command: str
    quick: str
    """The same command with tiny sizes (the tests run it and compare the shape)."""
    exact: bool = False
    """The output is the same on every run: compare it word for word (see `agrees`)."""


STRESS = "python -m metafuse stress run"
SAMPLES = (
    Sample("readme-library", "README.md", "python3 example.py", "python3 example.py", exact=True),
    Sample(
        "stress-run-help",
        "docs/stress-testing.md",
        f"{STRESS} --help",
        f"{STRESS} --help",
        exact=True,
    ),
    Sample(
        "stress-report",
        "docs/stress-testing.md",
        f"{STRESS} --clients 10 --duration 5 --seed 1234",
        f"{STRESS} --clients 3 --duration 1 --seed 1234",
    ),
    Sample(
        "stress-failure",
        "docs/stress-testing.md",
        f"METAFUSE_FAULTS=lost_update {STRESS} concurrent_writers --clients 4 --duration 2 --seed 42",
        f"METAFUSE_FAULTS=lost_update {STRESS} concurrent_writers --clients 3 --duration 1 --seed 42",
    ),
    Sample(
        "stress-thresholds",
        "docs/stress-testing.md",
        f"{STRESS} concurrent_writers --clients 4 --duration 4 --seed 7 --progress 1"
        " --threshold 'write.errors<1' --threshold 'write.ok_rate>1000000/s' --junit results.xml",
        f"{STRESS} concurrent_writers --clients 2 --duration 1 --seed 7 --progress 1"
        " --threshold 'write.errors<1' --threshold 'write.ok_rate>1000000/s' --junit results.xml",
    ),
)
"""Every generated sample, in the order the docs show them."""


def library_example() -> str:
    """The README's Python example, as it appears in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", text, re.S)
    if match is None:
        raise SystemExit("README.md has no ```python block")
    return match.group(1)


def run(sample: Sample, *, quick: bool) -> str:
    """Run a sample's command in a fresh temporary folder; return it and its output as shown."""
    command = sample.quick if quick else sample.command
    words = shlex.split(command)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFUSE_", "STRESS_TEST_"))}
    while "=" in words[0]:
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env["COLUMNS"] = "100"  # argparse wraps help to the terminal width
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as they would on a terminal
    with tempfile.TemporaryDirectory(prefix="metafuse-sample-") as folder:
        (Path(folder) / "example.py").write_text(library_example(), encoding="utf-8")
        argv = [sys.executable, *words[1:]] if words[0] in ("python", "python3") else words
        runs = 2 if sample.name == "readme-library" else 1
        shown = []
        for _ in range(runs):
            done = subprocess.run(
                argv,
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=600,
                check=False,
            )
            status = "" if done.returncode == 0 else f"(exit status {done.returncode})\n"
            shown.append(f"$ {sample.command}\n{done.stdout}{status}")
    return "".join(shown).rstrip("\n") + "\n"


def block(output: str) -> str:
    """The fenced block a sample's output is written as."""
    return f"```text\n{output}```\n"


def shown(doc: str, name: str) -> str | None:
    """The output a doc shows for sample `name` (None when the doc has no such sample)."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    for match in _BLOCK.finditer(text):
        if match["name"] == name:
            body = match["body"]
            return body[len("```text\n") : -len("```\n")] if body.startswith("```text\n") else body
    return None


def write(doc: str, name: str, output: str) -> None:
    """Replace sample `name` in `doc` with `output`."""
    path = ROOT / doc
    text = path.read_text(encoding="utf-8")
    found = False

    def replace(match: re.Match[str]) -> str:
        nonlocal found
        if match["name"] != name:
            return match.group(0)
        found = True
        return f"{match.group(1)}{block(output)}{match.group(4)}"

    updated = _BLOCK.sub(replace, text)
    if not found:
        raise SystemExit(f"{doc} has no <!-- sample: {name} --> marker")
    path.write_text(updated, encoding="utf-8")


_NUMBER = re.compile(r"(?<![\w.])-?\d(?:[\d,]*\d)?(?:\.\d+)?(?:e[+-]?\d+)?")
_HISTOGRAM = re.compile(r"N: N(?:, N: N)*")
_MARK = re.compile(r"^(\s*)\[(?:ok  |FAIL)\] (\S+?):.*$")


def skeleton(output: str) -> list[str]:
    """The shape of an output: numbers become N, verdict marks and details go, and lines that
    come and go with timing (progress, error samples, busy counts) are dropped."""
    lines = []
    for raw in output.splitlines():
        if raw.startswith(("$ ", "progress: ")) or raw.lstrip().startswith(("error sample:", "Busy (")):
            continue
        line = _HISTOGRAM.sub("N: N", _NUMBER.sub("N", raw))
        line = _MARK.sub(r"\1[..] \2", line)
        line = re.sub(r"^(Reproduce with:|Seed:|\w+ written to) .*$", r"\1 ...", line)
        lines.append(re.sub(r"\s+", " ", line).rstrip())
    return lines


def _words(text: str) -> str:
    # argparse wraps to the terminal and words its headings differently from one Python to another
    text = text.replace("optional arguments:", "options:").replace(
        "[SCENARIO [SCENARIO ...]]", "[SCENARIO ...]"
    )
    return " ".join(text.split())


def agrees(sample: Sample, output: str, documented: str) -> bool:
    """Whether a doc's sample matches a fresh output: word for word for an exact sample, else in
    shape (`skeleton`)."""
    if sample.exact:
        return _words(output) == _words(documented)
    return skeleton(output) == skeleton(documented)


def main(argv: Sequence[str] | None = None) -> int:
    """Render every sample into the docs, or with --check compare shapes with quick runs."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare with quick runs; write nothing")
    parser.add_argument("names", nargs="*", help="only these samples")
    args = parser.parse_args(argv)
    chosen = [s for s in SAMPLES if not args.names or s.name in args.names]
    stale = []
    for sample in chosen:
        print(f"{sample.name}: {sample.quick if args.check else sample.command}", flush=True)
        output = run(sample, quick=args.check)
        if args.check:
            documented = shown(sample.doc, sample.name) or ""
            if not agrees(sample, output, documented):
                stale.append(sample.name)
        else:
            write(sample.doc, sample.name, output)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python tools/render_samples.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
