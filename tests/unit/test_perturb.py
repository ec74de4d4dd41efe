"""Tests for metafuse.perturb: off costs nothing, on pauses at about `p`, a seed replays its choices."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from metafuse import perturb
from metafuse.errors import ValidationError

from .test_cli import REPO_ROOT, _child_env, assert_one_line_error

T = TypeVar("T")
PACKAGE = Path(__file__).resolve().parents[2] / "metafuse"


def _in_thread(name: str, work: Callable[[], T]) -> T:
    """Run `work()` in a new thread called `name` and return what it returned."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(work()), name=name)
    thread.start()
    thread.join()
    return out[0]


def _call_sites() -> list[tuple[str, int, str, bool]]:
    """Every `perturb.point("...")` in the package: file, line, point name, and whether it is guarded."""
    sites = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "perturb.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded: set[int] = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.If, ast.IfExp)) or ast.unparse(node.test) != "perturb.ON":
                continue
            for part in node.body if isinstance(node, ast.If) else [node.body]:
                guarded.update(id(inner) for inner in ast.walk(part))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "perturb.point":
                argument = node.args[0]
                assert isinstance(argument, ast.Constant)
                sites.append((path.name, node.lineno, str(argument.value), id(node) in guarded))
    return sites


def test_the_mode_is_off_by_default() -> None:
    assert perturb.ON is False
    assert perturb.current() is None


def test_every_call_site_is_guarded_and_names_a_listed_point() -> None:
    sites = _call_sites()
    assert [site for site in sites if not site[3]] == []
    assert sorted({site[2] for site in sites} - set(perturb.POINTS)) == []


def test_every_listed_point_has_a_call_site_and_a_meaning() -> None:
    assert set(perturb.POINTS) == {site[2] for site in _call_sites()}
    assert all(" -> " in name and meaning.strip() for name, meaning in perturb.POINTS.items())


def test_off_a_point_draws_nothing_and_pauses_nowhere() -> None:
    def work() -> object:
        for name in perturb.POINTS:
            for _ in range(100):
                perturb.point(name)
        return getattr(perturb._local, "rng", None)

    assert _in_thread("off", work) is None
    assert perturb.fired() == {}


def test_on_points_pause_at_about_the_probability() -> None:
    calls = 4000
    with perturb.enabled(seed=3, p=0.1):

        def work() -> None:
            for _ in range(calls):
                perturb.point("hit: validated -> served")

        _in_thread("on", work)
        paused = perturb.fired().get("hit: validated -> served", 0)
    # Binomial(4000, 0.1): mean 400, standard deviation 19; the seed makes the count fixed anyway.
    assert 300 < paused < 500
    assert perturb.fired() == {}  # switching off starts the count afresh


def test_an_unknown_point_name_is_refused_when_on() -> None:
    with perturb.enabled(seed=1, p=1.0), pytest.raises(ValueError, match="POINTS"):
        perturb.point("no such point")


def test_enabled_sets_the_variable_for_children_and_restores_it() -> None:
    before = os.environ.get(perturb.ENV_VAR)
    with perturb.enabled(seed=9, p=0.25) as settings:
        assert perturb.current() == settings
        assert os.environ[perturb.ENV_VAR] == "seed=9,p=0.25"
        assert perturb.parse(os.environ[perturb.ENV_VAR]) == settings
    assert perturb.current() is None
    assert os.environ.get(perturb.ENV_VAR) == before


def _draws(seed: int, thread: str) -> list[float]:
    with perturb.enabled(seed=seed, p=0.5):
        return _in_thread(thread, lambda: [perturb.rng().random() for _ in range(20)])


def test_a_seed_replays_each_threads_choices() -> None:
    assert _draws(5, "stress-1") == _draws(5, "stress-1")
    assert _draws(5, "stress-1") != _draws(5, "stress-2")
    assert _draws(5, "stress-1") != _draws(6, "stress-1")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
def test_a_forked_child_draws_a_sequence_of_its_own() -> None:
    with perturb.enabled(seed=5, p=0.5):
        parent = perturb.rng().random()
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(writer, repr(perturb.rng().random()).encode())
            os._exit(0)
        os.close(writer)
        child = float(os.read(reader, 100).decode())
        os.close(reader)
        os.waitpid(pid, 0)
    assert child != parent


@pytest.mark.parametrize(
    "text", ["bogus", "seed=x", "seed=1,p=0", "seed=1,p=2", "p=0.1", "seed=-1", "seed=1,q=2"]
)
def test_bad_text_is_a_validation_error_naming_the_variable(text: str) -> None:
    with pytest.raises(ValidationError, match=perturb.ENV_VAR):
        perturb.parse(text)


def test_parse_defaults_p() -> None:
    assert perturb.parse("seed=5") == perturb.Settings(5, perturb.DEFAULT_P)
    assert perturb.parse(" seed=5 , p=0.3 ") == perturb.Settings(5, 0.3)


def test_a_bad_variable_is_one_line_exit_2_and_import_survives(tmp_path: Path) -> None:
    env = _child_env(METAFUSE_PERTURB="seed=oops")
    imported = subprocess.run(
        [sys.executable, "-c", "import metafuse.cli; print('imported')"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (imported.returncode, imported.stdout, imported.stderr) == (0, "imported\n", "")
    done = subprocess.run(
        [sys.executable, "-m", "metafuse", "--catalog", str(tmp_path / "c.db"), "stress", "list"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert_one_line_error(done.stderr)
    assert "METAFUSE_PERTURB" in done.stderr
    assert "seed=oops" in done.stderr


def test_a_variable_in_the_environment_switches_the_mode_on_in_a_child() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from metafuse import perturb; print(perturb.ON, perturb.current())"],
        cwd=REPO_ROOT,
        env=_child_env(METAFUSE_PERTURB="seed=4,p=0.2"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout == "True seed=4,p=0.2\n", done.stderr


def test_the_guide_lists_every_point_as_the_registry_has_it() -> None:
    guide = (PACKAGE.parent / "docs" / "stress-testing.md").read_text(encoding="utf-8")
    table = guide.split("<!-- perturb-points -->\n", 1)[1].split("<!-- /perturb-points -->", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows == [f"| `{name}` | {meaning} |" for name, meaning in perturb.POINTS.items()]


def test_a_hold_stops_only_the_thread_that_armed_it_until_released() -> None:
    point = "hit: validated -> served"
    passed = threading.Event()

    def other() -> None:
        perturb.point(point)  # not armed in this thread: goes straight on
        passed.set()

    def held() -> str:
        with perturb.hold(point) as hold:
            holds.append(hold)
            perturb.point("read: stamp loaded -> database read")  # another point: not held
            perturb.point(point)
            return "went on"

    holds: list[perturb.Hold] = []
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(held()))
    thread.start()
    while not holds:
        threading.Event().wait(0.001)
    assert holds[0].reached.wait(5)
    assert perturb.ON is True  # call sites run while a hold is armed, with the mode off
    other_thread = threading.Thread(target=other)
    other_thread.start()
    assert passed.wait(5)
    other_thread.join()
    assert thread.is_alive()  # still held: it has not returned
    assert result == []
    holds[0].release()
    thread.join(5)
    assert result == ["went on"]
    assert perturb.ON is False  # disarmed on leaving the block, the mode off again
    assert perturb.fired() == {}  # a hold is not a random pause


def test_a_hold_fires_once_and_an_unknown_point_is_refused() -> None:
    with pytest.raises(ValueError, match="no such point"):
        perturb.Hold("no such point")
    with perturb.hold("hit: validated -> served") as hold:
        hold.release()  # released before it is reached: the thread goes straight on
        perturb.point("hit: validated -> served")
        assert hold.reached.is_set()
        perturb.point("hit: validated -> served")  # fired once already: not held again
    assert perturb.ON is False
