"""treadle.hypothesis: strategies that draw whole runs, so Hypothesis finds, shrinks and replays
counterexamples. Derandomized (and without a database unless a test gives one): not flaky."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase

import treadle
import treadle.hypothesis as th
from treadle.runner import replay

ROOT = Path(__file__).resolve().parents[1]


def load_register():
    """The tutorial's module, imported by path (it is not installed)."""
    spec = importlib.util.spec_from_file_location(
        "tutorial_register", ROOT / "examples" / "register" / "register.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


REGISTER = load_register().system
treadle.register(REGISTER)

FIND = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # finding only: shrinking has its own test
)


def test_runs_of_a_correct_system_pass():
    seen = []

    @settings(max_examples=25, derandomize=True, database=None, deadline=None)
    @given(th.runs("register"))
    def prop(run):
        seen.append(run)
        th.check(run)

    prop()
    assert len(seen) == 25
    # draws differ: different fault plans and schedules, not one run 25 times
    assert len({tuple(r.choices) for r in seen}) > 10
    assert len({tuple(sorted(r.faults.items())) for r in seen}) > 1


def test_a_seeded_bug_is_found_and_the_message_says_what_broke(tmp_path):
    @FIND
    @given(th.runs("register", bug="read-one"))
    def prop(run):
        th.check(run, out=str(tmp_path))

    with pytest.raises(AssertionError, match="violation of linearizability in register"):
        prop()


def test_a_drawn_run_replays_byte_for_byte_from_its_choices(tmp_path):
    runs = []

    @settings(max_examples=10, derandomize=True, database=None, deadline=None)
    @given(th.runs("register", bug="read-one"))
    def collect(run):
        runs.append(run)

    collect()
    for run in runs:
        trace = run.trace()
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.json"
        trace.save(str(path))
        r = replay(str(path))  # raises if the history digest differs
        assert r.history_sha256 == trace.history_sha256
        assert (r.run.violation is None) == (run.result.violation is None)


def test_the_final_example_is_saved_as_a_trace_and_replays(tmp_path):
    @settings(max_examples=300, derandomize=True, database=None, deadline=None)
    @given(th.runs("register", bug="read-one", config={"clients": 1, "ops": 2}))
    def prop(run):
        th.check(run, out=str(tmp_path), shrink_runs=200)

    with pytest.raises(AssertionError) as e:
        prop()
    msg = str(e.value)
    assert "replay: treadle replay " in msg
    saved = list((tmp_path / "register").glob("hypothesis-read-one-*.json"))
    assert len(saved) == 1  # only the final example is saved, not every one shrinking tried
    r = replay(str(saved[0]))
    assert r.run.violation is not None and r.run.violation.property == "linearizability"
    assert json.loads(saved[0].read_text())["strategy"] == "hypothesis"


def test_hypothesis_shrinks_the_drawn_run():
    failing = []

    @settings(max_examples=300, derandomize=True, database=None, deadline=None)
    @given(th.runs("register", bug="read-one", config={"clients": 1, "ops": 2}))
    def prop(run):
        try:
            th.check(run, out=None, shrink_runs=0)
        except AssertionError:
            failing.append(run)
            raise

    with pytest.raises(AssertionError):
        prop()
    first, final = failing[0], failing[-1]
    assert final.result.violation is not None
    # the shrinker lowered choices towards the natural ones (0: the earliest event, no fault,
    # delivered): fewer non-zero choices than the first failing run had ...
    assert sum(1 for c in final.choices if c) < sum(1 for c in first.choices if c)

    # ... and the fault plan, drawn first, is no larger in Hypothesis' order (scale by scale)
    def plan(run):
        base = REGISTER.resolve_config()
        return [
            th.FAULT_SCALES.index(run.faults[k] / base[k]) if base[k] else 0
            for k in th.FAULT_PLAN_KEYS
        ]

    assert plan(final) <= plan(first)


def test_the_example_database_replays_a_failure_first():
    db = InMemoryExampleDatabase()
    calls = []

    def make(phases):
        @settings(database=db, max_examples=300, deadline=None, derandomize=False, phases=phases)
        @given(th.runs("register", bug="read-one"))
        def prop(run):
            calls.append(run)
            th.check(run, out=None, shrink_runs=0)

        return prop

    with pytest.raises(AssertionError):
        make([Phase.generate])()
    assert db.data, "Hypothesis saved nothing"
    calls.clear()
    # reuse only: no generation, the saved failure must come back, and on its first call
    with pytest.raises(AssertionError, match="violation of linearizability"):
        make([Phase.reuse])()
    assert calls and calls[0].result.violation is not None


def test_config_values_may_be_strategies_and_are_validated():
    @settings(max_examples=15, derandomize=True, database=None, deadline=None)
    @given(th.runs("register", config={"clients": st.integers(1, 3), "ops": 2}))
    def prop(run):
        assert 1 <= run.config["clients"] <= 3 and run.config["ops"] == 2
        assert {e["process"] for e in run.result.history if "process" in e} <= {"c1", "c2", "c3"}

    prop()
    with pytest.raises(treadle.errors.TreadleError, match="unknown bug"):
        th.runs("register", bug="nope")
    with pytest.raises(ValueError, match="replicas"):
        th.runs("register", config={"replicas": 0})
    with pytest.raises(ValueError, match="tail"):
        th.runs("register", tail="sideways")


def test_without_a_fault_plan_the_configured_rates_stay():
    @settings(max_examples=5, derandomize=True, database=None, deadline=None)
    @given(th.runs("register", faults=False))
    def prop(run):
        assert run.faults["crash_rate"] == REGISTER.resolve_config()["crash_rate"]

    prop()


@pytest.mark.slow
def test_raft_figure8_is_found_with_the_walk_tail():
    """The issue's example: Raft's Figure 8 bug needs PCT-like orderings, so the drawn prefix is
    short and explore's default strategy, seeded by Hypothesis, continues the run."""

    @settings(
        max_examples=1500, derandomize=True, database=None, deadline=None, phases=[Phase.generate]
    )
    @given(th.runs("raft", bug="figure8", tail="walk", size=32))
    def prop(run):
        th.check(run, out=None)

    with pytest.raises(AssertionError, match="Leader Completeness|State Machine Safety"):
        prop()
