"""Condition coverage of node code (treadle.condcov): the instrumented code behaves exactly as the
original, the features say which way each condition went, the code is put back afterwards, and
the guided strategy follows those features where nothing else guides it."""

from __future__ import annotations

import concurrent.futures
import sys
import textwrap
import types

import maze_system
import pytest

from treadle import condcov
from treadle import history as hist
from treadle.run import run_once
from treadle.runner import explore
from treadle.strategies import Guided, RandomWalk, Recorder
from treadle.system import all_systems, get_system, register

register(maze_system.system)

REFERENCE = ["raft", "pbft", "kv", "eventstore", "mesh", "twophase"]


def _digests(name: str, seeds: range) -> list[str]:
    sys_ = get_system(name)
    cfg = sys_.resolve_config()
    out = []
    for seed in seeds:
        strat = RandomWalk()
        strat.begin_run(seed, cfg, sys_.steps)
        r = run_once(sys_, cfg, None, Recorder(strat), sys_.steps)
        out.append(hist.digest(r.history))
    return out


@pytest.mark.parametrize("name", REFERENCE)
def test_instrumented_node_code_records_the_same_histories(name):
    sys_ = get_system(name)
    plain = _digests(name, range(3))
    modules = condcov.modules_of(sys_)
    assert modules and all(m.startswith(f"treadle.impl.{name}") for m in modules)
    # the binding (checks, abstraction) is not node code
    assert f"treadle.impl.{name}.system" not in modules
    condcov.enable(modules)
    try:
        features = condcov.reset()
        instrumented = _digests(name, range(3))
        assert features, "the probes recorded nothing"
    finally:
        condcov.disable()
    assert instrumented == plain


def _module(tmp_path, monkeypatch, source: str) -> types.ModuleType:
    (tmp_path / "usersys.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("usersys", None)
    import usersys

    return usersys


def test_features_say_which_way_each_condition_went(tmp_path, monkeypatch):
    mod = _module(
        tmp_path,
        monkeypatch,
        """
        class Node:
            def decide(self, a, b, flag):
                if a < b and flag:
                    return "below"
                return "other"
        """,
    )
    original = mod.Node.decide.__code__
    assert condcov.node_modules("usersys") == ["usersys"]
    condcov.enable(["usersys"])
    try:
        assert mod.Node.decide.__code__ is not original
        seen = condcov.reset()
        n = mod.Node()
        assert n.decide(1, 2, True) == "below"
        first = list(seen)
        assert len(first) == 2  # the comparison (below) and the flag (true)
        assert n.decide(2, 2, True) == "other"  # equal: a new relation, and `flag` not evaluated
        assert len(seen) == 3
        assert n.decide(1, 2, 0) == "other"  # the flag false: new
        assert len(seen) == 4
        n.decide(0, 5, True)  # nothing new
        assert len(seen) == 4
        relations = {k % 8 for k in seen}
        assert {0, 1} <= relations  # below and equal, for the integer comparison
    finally:
        condcov.disable()
    assert mod.Node.decide.__code__ is original


def test_an_exception_inside_an_instrumented_comparison_is_the_same_exception(
    tmp_path, monkeypatch
):
    mod = _module(
        tmp_path,
        monkeypatch,
        """
        def compare(a, b):
            return a < b
        """,
    )
    condcov.enable(["usersys"])
    try:
        condcov.reset()
        with pytest.raises(TypeError, match="not supported between"):
            mod.compare("x", 1)
    finally:
        condcov.disable()


@pytest.mark.parametrize("strategy", ["guided", "mixed"])
def test_runs_on_an_executor_of_threads_are_the_runs_of_one_process(strategy):
    # a Dask worker runs chunks in threads: the probes' features must stay each run's own
    kw = dict(strategy=strategy, runs=48, seed=3, out=None, shrink_time=0)
    one = explore("raft", bug="figure8", workers=1, **kw)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        threads = explore("raft", bug="figure8", executor=pool, **kw)
    assert (one.verdict, one.runs, one.steps, one.events, one.history_sha256) == (
        threads.verdict,
        threads.runs,
        threads.steps,
        threads.events,
        threads.history_sha256,
    )


def test_a_guided_exploration_puts_the_node_code_back():
    import treadle.impl.raft.node as node

    code = node.RaftServer.on_message.__code__
    explore("raft", strategy="guided", runs=20, seed=0, out=None, shrink_time=0)
    assert node.RaftServer.on_message.__code__ is code
    assert not condcov._active


@pytest.mark.parametrize("seed", [0, 100_000])
def test_condition_coverage_alone_guides_through_the_maze(seed, monkeypatch):
    # the maze has no events, no sometimes-assertions, no abstraction: only its conditions.
    # Seeds 0 and 100000 are the first two of bench/guided_bench.py's five (guided: 279, 218
    # runs; random and guided without conditions: not within 3,000, and 1,358)
    budget = 800
    kw = dict(runs=budget, seed=seed, out=None, shrink_time=0)
    guided = explore("maze", strategy="guided", **kw)
    rand = explore("maze", strategy="random", **kw)
    monkeypatch.setattr(Guided, "CONDITIONS", False)
    blind = explore("maze", strategy="guided", **kw)
    assert guided.verdict == "violation", guided.summary()
    assert rand.verdict == "ok" and blind.verdict == "ok", (rand.runs, blind.runs)


def test_every_reference_system_has_node_code_to_instrument():
    for name, sys_ in all_systems().items():
        if name in REFERENCE:
            assert condcov.modules_of(sys_)


def test_a_module_edited_since_it_was_imported_keeps_its_own_code(tmp_path, monkeypatch):
    mod = _module(
        tmp_path,
        monkeypatch,
        """
        def limit(a):
            return a < 10
        """,
    )
    code = mod.limit.__code__
    # the user edits the file during a long exploration: the loaded function is not what the
    # file compiles to any more, so nothing of the new file may be swapped in
    (tmp_path / "usersys.py").write_text("\ndef limit(a):\n    return a < 99\n")
    condcov.enable(["usersys"])
    try:
        assert mod.limit.__code__ is code
        assert mod.limit(50) is False
    finally:
        condcov.disable()
