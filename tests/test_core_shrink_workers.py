"""Shrink candidates on workers: the same trace, byte for byte, as one at a time."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from treadle.cli import main
from treadle.runner import explore, load_and_check
from treadle.shrink import pool as candidate_pool
from treadle.shrink import shrink, shrink_report
from treadle.system import System
from treadle.trace import Trace

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[System, Trace, str]:
    out = tmp_path_factory.mktemp("raw")
    r = explore("example", bug="stale-read", seed=0, runs=300, out=str(out), shrink_time=0)
    assert r.trace is not None
    system, trace = load_and_check(r.trace)
    return system, trace, r.trace


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the candidates sent to workers (the parent submits them)."""
    n = {"candidates": 0}
    real = candidate_pool.CandidatePool.submit

    def submit(self: Any, *args: Any, **kwargs: Any) -> Any:
        n["candidates"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(candidate_pool.CandidatePool, "submit", submit)
    return n


@pytest.mark.parametrize("budget", [600, 37])
def test_two_workers_shrink_to_the_bytes_one_does(raw, submitted, budget):
    system, trace, _ = raw
    one = shrink(system, trace, runs=budget, time=math.inf)
    two = shrink(system, trace, runs=budget, time=math.inf, workers=2)
    assert submitted["candidates"] > 0  # the candidates did run on the workers
    assert two.dumps() == one.dumps()
    # the budget is counted the same: runs past a kept candidate are discarded, not counted
    assert shrink_report(two)["runs"] == shrink_report(one)["runs"]
    if budget == 37:
        assert shrink_report(one)["stopped"] == "runs"


def test_a_kv_trace_shrinks_the_same_on_two_workers(submitted):
    # a bigger system whose schedule (hundreds of steps, message contents) travels to workers
    system, trace = load_and_check(str(HISTORIES / "kv/no-handoff-durability-seed147.json"))
    one = shrink(system, trace, runs=120, time=math.inf)
    two = shrink(system, trace, runs=120, time=math.inf, workers=2)
    assert submitted["candidates"] >= 50  # (the search for smaller configs runs here)
    assert two.dumps() == one.dumps()


def test_treadle_shrink_workers_writes_the_same_trace(raw, tmp_path, capsys):
    _, _, path = raw
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.json"
        code = main(["shrink", path, "--out", str(out), "--runs", "300", "--workers", workers])
        assert code == 1
        outs.append(out.read_text())
    capsys.readouterr()
    assert outs[0] == outs[1]


def test_explore_shrinks_on_its_workers_with_the_same_result(tmp_path, submitted):
    kw: dict[str, Any] = dict(bug="stale-read", seed=0, runs=300, shrink_runs=300)
    one = explore("example", out=str(tmp_path / "one"), **kw)
    two = explore("example", out=str(tmp_path / "two"), workers=2, **kw)
    assert submitted["candidates"] > 0
    assert one.trace and two.trace
    assert Path(one.trace).read_text() == Path(two.trace).read_text()
    assert one.shrunk == two.shrunk
