"""tools/mutants.py: every rule applies to the code as it is, stale rules are refused by name, and
the verdicts (caught, survived, inconclusive beside a red control) give the right exit status."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "mutants.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutants_under_test", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


mutants = _load()
PLACES = mutants.scenario_places()
RULES = mutants.load_rules(mutants.RULES, PLACES)


def _rules_file(tmp_path: Path, *rules: dict[str, object]) -> str:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"mutants": list(rules)}), encoding="utf-8")
    return str(path)


def _rule(**fields: object) -> dict[str, object]:
    rule: dict[str, object] = {
        "name": "planted",
        "bug": "a bug",
        "file": "code.py",
        "old": "x = 1",
        "new": "x = 2",
        "scenarios": ["concurrent_writers"],
    }
    rule.update(fields)
    return rule


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_every_rule_applies_to_the_code_as_it_is_exactly_once(rule: object, tmp_path: Path) -> None:
    mutants.check(rule, str(ROOT))
    target = tmp_path / rule.file  # type: ignore[attr-defined]
    target.parent.mkdir(parents=True)
    original = (ROOT / rule.file).read_text(encoding="utf-8")  # type: ignore[attr-defined]
    target.write_text(original, encoding="utf-8")
    mutants.apply(rule, str(tmp_path))
    changed = target.read_text(encoding="utf-8")
    assert changed != original
    compile(changed, str(target), "exec")  # the mutant is still Python: it fails by behaviour


def test_the_list_has_the_issues_mutants_and_names_scenarios_that_exist() -> None:
    assert len(RULES) >= 20
    assert {rule.catalog for rule in RULES} == {"file", "store"}
    for rule in RULES:
        assert rule.scenarios
        assert set(rule.scenarios) <= set(PLACES)


@pytest.mark.parametrize(
    ("source", "says"),
    [("y = 0\n", "is not in code.py"), ("x = 1\nx = 1\n", "occurs 2 times in code.py")],
)
def test_a_rule_whose_text_is_missing_or_ambiguous_is_refused_by_name(
    tmp_path: Path, source: str, says: str
) -> None:
    (tmp_path / "code.py").write_text(source, encoding="utf-8")
    (rule,) = mutants.load_rules(_rules_file(tmp_path, _rule()), PLACES)
    with pytest.raises(mutants.RuleError, match=f"mutant 'planted': its old text {says}"):
        mutants.apply(rule, str(tmp_path))
    assert (tmp_path / "code.py").read_text(encoding="utf-8") == source


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"scenarios": ["no_such_scenario"]}, "unknown scenarios entry 'no_such_scenario'"),
        ({"scenarios": ["lifecycle"], "catalog": "store"}, "scenario 'lifecycle' runs on a catalog file"),
        ({"modes": ["greenlet"]}, "unknown modes entry 'greenlet'"),
        ({"old": ""}, "'old' must be a non-empty string"),
        ({"typo": 1}, "unknown field 'typo'"),
        ({"catalogs": "pooled"}, "catalogs must be one of shared, per-client, mixed, not 'pooled'"),
    ],
)
def test_a_malformed_rule_is_refused_by_name(tmp_path: Path, fields: dict[str, object], says: str) -> None:
    with pytest.raises(mutants.RuleError, match=f"mutant 'planted': {says}"):
        mutants.load_rules(_rules_file(tmp_path, _rule(**fields)), PLACES)


def test_a_stale_rule_stops_the_runner_before_any_run_with_one_line(tmp_path: Path) -> None:
    rules = _rules_file(tmp_path, _rule(file="metafuse/_cache.py", old="no such line in the cache"))
    done = subprocess.run(
        [sys.executable, str(TOOL), "--rules", rules, "--runs", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "mutant 'planted': its old text is not in metafuse/_cache.py" in done.stderr


def test_an_unknown_mutant_name_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, str(TOOL), "--mutant", "nope", "--list"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "--mutant: no mutant 'nope'" in done.stderr


# -- verdicts on canned steps --------------------------------------------------------------------

Step = mutants.Step
GREEN = Step("concurrent_writers")


def test_a_red_step_beside_a_green_control_is_a_catch_naming_its_invariant() -> None:
    steps = [Step("concurrent_writers", failed=("version_chain",))]
    verdict = mutants.judge("m", "thread", 1, steps, {"concurrent_writers": GREEN})
    assert verdict.outcome == "caught"
    assert verdict.caught_by == ("concurrent_writers.version_chain",)


def test_a_red_control_makes_the_run_and_its_row_inconclusive_and_the_exit_non_zero() -> None:
    steps = [Step("concurrent_writers", failed=("version_chain",))]
    control = Step("concurrent_writers", failed=("final_content",))
    red = mutants.judge("m", "thread", 1, steps, {"concurrent_writers": control})
    assert red.outcome == "inconclusive"
    assert "control red: concurrent_writers.final_content" in red.detail
    caught = mutants.judge("m", "thread", 2, steps, {"concurrent_writers": GREEN})
    (row,) = mutants.rows_of([caught, red])
    assert row.verdict == "INCONCLUSIVE"
    assert row.caught == 1
    assert mutants.exit_status([row]) == 1
    assert "seed 1: INCONCLUSIVE (control red" in mutants.table([row])


def test_a_red_controls_verdict_says_what_its_invariant_said() -> None:
    steps = [Step("fork_writers", failed=("no_errors",))]
    control = Step("fork_writers", failed=("no_errors",), details=("no_errors (1 errors, first: boom)",))
    red = mutants.judge("m", "process", 1, steps, {"fork_writers": control})
    assert "control red: fork_writers.no_errors (1 errors, first: boom)" in red.detail


def test_a_surviving_mutant_fails_the_table_even_when_caught_in_other_runs() -> None:
    timed_out = [Step("concurrent_writers", error="timed out after 90 s")]
    caught = mutants.judge("m", "process", 1, timed_out, {"concurrent_writers": GREEN})
    survived = mutants.judge("m", "process", 2, [GREEN], {"concurrent_writers": GREEN})
    assert caught.outcome == "caught"
    assert survived.outcome == "survived"
    (row,) = mutants.rows_of([caught, survived])
    assert row.verdict == "SURVIVED"
    assert mutants.exit_status([row]) == 1


def test_a_green_run_that_could_not_judge_an_invariant_is_inconclusive_not_survived() -> None:
    steps = [Step("concurrent_writers", inconclusive=("conflicts_detected",))]
    verdict = mutants.judge("m", "thread", 1, steps, {"concurrent_writers": GREEN})
    assert verdict.outcome == "inconclusive"


def test_every_mutant_caught_in_every_run_passes_and_the_markdown_has_both_modes() -> None:
    steps = [Step("concurrent_writers", failed=("version_chain",))]
    verdicts = [
        mutants.judge(RULES[0].name, mode, seed, steps, {"concurrent_writers": GREEN})
        for mode in ("thread", "process")
        for seed in (1, 2)
    ]
    rows = mutants.rows_of(verdicts)
    assert [row.verdict for row in rows] == ["CAUGHT", "CAUGHT"]
    assert mutants.exit_status(rows) == 0
    assert mutants.exit_status([]) == 1
    text = mutants.markdown(rows, RULES, "python tools/mutants.py", "today")
    cell = "caught 2/2: `concurrent_writers.version_chain (2)`"
    assert f"| `{RULES[0].name}` | {RULES[0].bug} | {cell} | {cell} |" in text


@pytest.mark.slow
def test_a_mutant_is_caught_end_to_end_beside_its_control(tmp_path: Path) -> None:
    # The placement check skipped: every stalled writer's first stall crosses the retention by
    # construction, so stalled_writer catches it in every run.
    out = tmp_path / "run.json"
    done = subprocess.run(
        [
            sys.executable,
            str(TOOL),
            "--mutant",
            "log_placement_unchecked",
            "--modes",
            "thread",
            "--runs",
            "1",
            "--seed",
            "3",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["settings"]["perturb"] is True  # every run perturbed unless --no-perturb
    (run,) = document["runs"]
    assert run["outcome"] == "caught"
    assert any(reason.startswith("stalled_writer.") for reason in run["caught_by"])
