"""BFS on workers reports what the serial BFS reports: the same states, transitions, history
checks, depth, path counts, bounds and the same counterexample (its trace byte for byte), with 1
and 2 workers, on several systems' small configs: clean, violating, and stopped by a bound."""

from __future__ import annotations

import concurrent.futures as cf
import json

import pytest
import tally_system

import treadle
import treadle.exhaustive.workers as workers_mod
from treadle.exhaustive import make_explorer
from treadle.exhaustive.workers import SearchSpec, expand_batch
from treadle.system import get_system, register

register(tally_system.system)

#: what must not differ between the serial and the parallel search
SAME = (
    "verdict",
    "violation",
    "history_sha256",
    "steps",
    "complete",
    "states",
    "transitions",
    "paths_counted",
    "history_checks",
    "unknown_checks",
    "depth",
    "bounds_hit",
    "liveness",
    "counterexample_steps",
    "summary",
)

CASES = [
    # (system, bug, config, verdict): clean, violating (an invariant, a history check, a final
    # check), stopped by a bound
    ("example", None, None, "ok"),
    ("kv", None, None, "ok"),
    ("kv", "sloppy-claims-linearizable", None, "violation"),
    ("eventstore", "replay-from-zero", None, "violation"),
    ("twophase", "commit-without-all-prepared", None, "violation"),  # symmetry reduction
    ("twophase", None, {"rms": 3}, "ok"),
    # the checker keeps its memory of the path on the world: the workers' replay must too
    ("raft", None, {"max_crashes": 1, "election_candidates": 1}, "ok"),
    ("twophase", None, {"max_depth": 6}, "unknown"),  # depth bound
    ("example", None, {"max_states": 300}, "unknown"),  # state bound
]


def _untimed(x):
    """Without the checkers' own timings (a linearizability check reports its seconds)."""
    if isinstance(x, dict):
        return {k: _untimed(v) for k, v in x.items() if k != "elapsed_s"}
    if isinstance(x, list):
        return [_untimed(v) for v in x]
    return x


def _same(r) -> dict:
    d = r.to_json()
    return _untimed({k: d.get(k) for k in SAME})


@pytest.fixture
def from_the_first_state(monkeypatch):
    """Hand every state to the workers (small searches otherwise stay in this process)."""
    monkeypatch.setattr(workers_mod, "LOCAL_STATES", 0)


@pytest.mark.parametrize(
    "name,bug,config,verdict",
    CASES,
    ids=[f"{n}-{b or 'clean'}-{c or ''}" for n, b, c, _ in CASES],
)
def test_bfs_on_two_workers_is_the_serial_bfs(
    name, bug, config, verdict, tmp_path, from_the_first_state
):
    serial = treadle.explore(
        name, bug=bug, strategy="bfs", config=config, out=str(tmp_path / "1"), workers=1
    )
    pooled = treadle.explore(
        name, bug=bug, strategy="bfs", config=config, out=str(tmp_path / "2"), workers=2
    )
    assert serial.verdict == verdict, serial.extra["summary"]
    assert _same(pooled) == _same(serial)
    par = pooled.extra["parallel"]
    assert par["workers"] == 2 and par["states_on_workers"] > 0, par
    assert "parallel" not in serial.extra
    if serial.trace:
        with open(serial.trace) as a, open(pooled.trace) as b:
            one, two = json.load(a), json.load(b)
        assert _untimed(one) == _untimed(two)
        assert one["choices"] and one["history_sha256"] == two["history_sha256"]
    else:
        assert pooled.trace is None


def test_any_executor_gives_the_serial_result(from_the_first_state) -> None:
    serial = treadle.explore("eventstore", bug="replay-from-zero", strategy="bfs", out=None)
    with cf.ThreadPoolExecutor(2) as pool:
        other = treadle.explore(
            "eventstore", bug="replay-from-zero", strategy="bfs", out=None, executor=pool
        )
    assert _same(other) == _same(serial)
    assert other.extra["parallel"]["executor"] == "ThreadPoolExecutor"


def test_a_killed_worker_loses_no_state(tmp_path, from_the_first_state) -> None:
    marker = tmp_path / "kill-me"
    cfg = {
        "kill_marker": str(marker),
        "window": 10**9,
        "latency_min": 1,
        "latency_max": 1,
        "timer_drift": 0,
        "drop_rate": 0.0,
        "duplicate_rate": 0.0,
        "crash_rate": 0.0,
        "clients": 1,
        "ops": 1,
    }
    serial = treadle.explore("tally", strategy="bfs", config=cfg, out=None, workers=1)
    marker.write_text("a worker that builds the system while this exists kills itself\n")
    pooled = treadle.explore("tally", strategy="bfs", config=cfg, out=None, workers=2)
    assert not marker.exists(), "no worker died: the test did not test anything"
    assert pooled.extra["parallel"]["worker_restarts"] >= 1
    assert serial.verdict == "violation"
    assert _same(pooled) == _same(serial)


def test_symmetry_on_another_hash_seed_is_refused_by_the_worker() -> None:
    """Symmetric fingerprints break ties by hash(): a worker under another hash seed expands
    nothing (the coordinator then runs the batches itself) rather than merge differently."""
    ex = make_explorer(get_system("twophase"), config={"rms": 2})
    assert ex.groups
    spec = SearchSpec(
        {"name": "twophase"}, ex.cfg, None, dict(ex.bounds), True, hash(workers_mod._PROBE) + 1
    )
    w, ch, _ = next(ex.roots())
    got = expand_batch(spec, [(-1, tuple(ch))], [(0, ex.root_meta(), 0)])
    assert got.hash_mismatch and got.expansions == []
    ok = expand_batch(
        SearchSpec(
            {"name": "twophase"}, ex.cfg, None, dict(ex.bounds), True, hash(workers_mod._PROBE)
        ),
        [(-1, tuple(ch))],
        [(0, ex.root_meta(), 0)],
    )
    assert not ok.hash_mismatch and ok.expansions[0].kind == "step"


def test_dfs_and_dpor_with_workers_run_serially_and_say_so() -> None:
    for strategy in ("dfs", "dpor"):
        serial = treadle.explore("kv", strategy=strategy, out=None, workers=1)
        pooled = treadle.explore("kv", strategy=strategy, out=None, workers=2)
        assert _same(pooled) == _same(serial)
        assert "ran in this process" in pooled.extra["parallel"]["note"]
