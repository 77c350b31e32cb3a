"""BFS on workers reports what the serial BFS reports: the same states, transitions, history
checks, depth, path counts, bounds and the same counterexample (its trace byte for byte), with 1
and 2 workers, on several systems' small configs: clean, violating, and stopped by a bound."""

from __future__ import annotations

import concurrent.futures as cf
import json
import pickle
from typing import Any

import pytest
import tally_system

import treadle
import treadle.exhaustive.workers as workers_mod
from treadle.errors import TreadleError
from treadle.exhaustive import make_explorer
from treadle.exhaustive.workers import Sealed, SearchSpec, expand_batch
from treadle.node import Context, Node
from treadle.system import Cluster, System, get_system, register

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


def _one_root_batch(name: str, config: dict, probe_offset: int):
    ex = make_explorer(get_system(name), config=config)
    probe = hash(workers_mod._PROBE) + probe_offset
    spec = SearchSpec({"name": name}, ex.cfg, None, dict(ex.bounds), bool(ex.groups), probe)
    _, ch, _ = next(ex.roots())
    return ex, expand_batch(spec, [(-1, tuple(ch), (-1, -1))], [(0, ex.root_meta(), 0, 0)])


def test_symmetry_on_another_hash_seed_is_refused_by_the_worker() -> None:
    """Symmetric fingerprints break ties by hash(): a worker under another hash seed expands
    nothing (the coordinator then runs the batches itself) rather than merge differently."""
    ex, got = _one_root_batch("twophase", {"rms": 2}, 1)
    assert ex.groups
    assert got.hash_mismatch and got.expansions == []
    _, ok = _one_root_batch("twophase", {"rms": 2}, 0)
    assert not ok.hash_mismatch and ok.expansions[0].kind == "step"
    assert all(type(step[2]) is Sealed for step in ok.expansions[0].steps)


def test_fingerprints_travel_sealed_only_under_the_same_hash_seed() -> None:
    _, same = _one_root_batch("kv", {}, 0)
    _, other = _one_root_batch("kv", {}, 1)  # another seed: hash() values would not compare
    steps_same, steps_other = same.expansions[0].steps, other.expansions[0].steps
    assert steps_same and all(type(s[2]) is Sealed for s in steps_same)
    assert all(type(s[2]) is tuple for s in steps_other)
    for a, b in zip(steps_same, steps_other):
        assert a[2] == b[2] and hash(a[2]) == hash(b[2])


def test_a_sealed_fingerprint_equals_exactly_what_it_seals() -> None:
    x = (("a", frozenset({1, 2, 3})), 7)
    y = (("a", frozenset({3, 2, 1})), 7.0)  # equal, maybe pickled otherwise (7.0 surely)
    z = (("a", frozenset({1, 2})), 7)
    sx, sy, sz = (Sealed(hash(v), pickle.dumps(v)) for v in (x, y, z))
    assert sx.b != sy.b and sx == sy and hash(sx) == hash(sy)
    assert sx != sz and sx == x and sx != z
    seen = {x: 0}  # a key computed here, found from a sealed one and back
    assert seen.get(sy) == 0 and sz not in seen
    seen2 = {sx: 1}
    assert seen2.get(y) == 1 and z not in seen2
    # a hash collision with different contents is told apart
    assert Sealed(5, pickle.dumps(x)) != Sealed(5, pickle.dumps(z))


def test_dfs_and_dpor_with_workers_run_serially_and_say_so() -> None:
    for strategy in ("dfs", "dpor"):
        serial = treadle.explore("kv", strategy=strategy, out=None, workers=1)
        pooled = treadle.explore("kv", strategy=strategy, out=None, workers=2)
        assert _same(pooled) == _same(serial)
        assert "ran in this process" in pooled.extra["parallel"]["note"]


# ------------------------------------------------------ a state the workers cannot send
class _Opaque:
    """Hashable, but not picklable (it holds a lambda)."""

    def __init__(self, n: int) -> None:
        self.n, self.f = n, lambda: n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Opaque) and other.n == self.n

    def __hash__(self) -> int:
        return self.n


class _Counter(Node):
    def __init__(self) -> None:
        self.n = 0

    def state(self) -> Any:
        return _Opaque(self.n)

    def on_start(self, ctx: Context) -> None:
        if ctx.id == "a":
            for i in range(3):
                ctx.send("b", i)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.n += msg


OPAQUE = System(
    name="opaque-state",
    description="a node state that cannot be pickled",
    build=lambda cfg, bug: Cluster(servers={"a": _Counter, "b": _Counter}),
    exhaustive={"window": 10**9, "latency_max": 1, "timer_drift": 0},
)


def test_an_unpicklable_state_is_one_clear_error(from_the_first_state) -> None:
    serial = treadle.explore(OPAQUE, strategy="bfs", out=None)
    assert serial.verdict == "ok" and serial.extra["states"] > 3
    with pytest.raises(TreadleError, match="cannot be pickled.*--workers 1"):
        treadle.explore(OPAQUE, strategy="bfs", out=None, workers=2)
