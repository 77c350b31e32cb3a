"""Each system's small exhaustive config (``System.exhaustive``) completes under bfs, dfs and
dpor with no other flags, and bfs finds every seeded bug reachable in it with a shortest
counterexample that replays.

The configs are asynchronous worlds (every pending event enabled, due times out of the
fingerprint) with narrowed workloads (scripted operations, no think timers); see each
system's binding for why that is the smallest workload that still reaches a bug."""

from __future__ import annotations

import pytest

import treadle
from treadle.exhaustive import split_config
from treadle.runner import replay
from treadle.system import get_system

#: system -> (bug, extra config, property, shortest counterexample length) reachable by bfs
REACHABLE = {
    # history checks run wherever an operation completes: the read returns stale at step 6,
    # before the run's tail (the primary's outstanding replication) plays out
    "example": [("stale-read", {}, "linearizability", 6)],
    "eventstore": [
        ("no-fsync", {}, "Durability", 6),
        ("snapshot-off-by-one", {}, "Snapshot Consistency", 6),
        ("replay-from-zero", {}, "Replay Equivalence", 10),
        # needs two concurrent appends: a second client (and no crash, to stay small)
        (
            "non-atomic-version-check",
            {"clients": 2, "crash_rate": 0.0},
            "Optimistic Concurrency",
            8,
        ),
    ],
    "kv": [("sloppy-claims-linearizable", {}, "linearizability", 10)],
}

#: bugs that the default small config cannot reach (the reason is in the report and docs)
UNREACHABLE = {
    "eventstore": ["non-atomic-version-check"],
    "kv": ["stale-read-repair", "no-handoff", "lose-on-remove"],
}

SYSTEMS = ["example", "eventstore", "kv"]


@pytest.mark.parametrize("name", SYSTEMS)
def test_exhaustive_config_is_asynchronous(name: str) -> None:
    system = get_system(name)
    cfg, bounds = split_config(system, None)
    assert cfg["window"] >= 1_000_000
    assert cfg["latency_min"] == cfg["latency_max"] and cfg["timer_drift"] == 0


@pytest.mark.parametrize("name", SYSTEMS)
def test_bfs_and_dfs_complete_clean_with_the_same_states(name: str) -> None:
    results = {s: treadle.explore(name, strategy=s, out=None) for s in ("bfs", "dfs")}
    for s, r in results.items():
        assert r.verdict == "ok", (s, r.extra["summary"])
        assert r.extra["complete"], (s, r.extra["summary"])
        assert r.extra["model"] == "asynchronous"
    assert results["bfs"].extra["states"] == results["dfs"].extra["states"] > 50
    assert results["bfs"].extra["paths_counted"] == results["dfs"].extra["paths_counted"]
    assert results["bfs"].extra["executions_run"] is None  # counted, not run


@pytest.mark.parametrize("name", SYSTEMS)
def test_dpor_completes_and_reduces(name: str) -> None:
    r = treadle.explore(name, strategy="dpor", out=None)
    assert r.verdict == "ok" and r.extra["complete"], r.extra["summary"]
    assert 0 < r.extra["executions_run"] < r.extra["dfs_paths_counted"]
    assert r.extra["reduction"] > 1


@pytest.mark.parametrize(
    "name,bug,extra,prop,steps",
    [(n, *case) for n, cases in REACHABLE.items() for case in cases],
    ids=[f"{n}-{c[0]}" for n, cases in REACHABLE.items() for c in cases],
)
def test_bfs_finds_reachable_bug_shortest(name, bug, extra, prop, steps, tmp_path) -> None:
    r = treadle.explore(name, bug=bug, strategy="bfs", config=extra or None, out=str(tmp_path))
    assert r.verdict == "violation", r.extra.get("summary")
    assert r.violation.property == prop
    assert r.extra["counterexample_steps"] == steps
    rep = replay(r.trace)
    assert rep.matches and rep.run.violation is not None
    assert rep.run.violation.property == prop


@pytest.mark.parametrize(
    "name,bug",
    [(n, b) for n, bugs in UNREACHABLE.items() for b in bugs],
)
def test_unreachable_bugs_complete_clean(name: str, bug: str) -> None:
    """The default small config cannot reach these bugs: bfs proves it by completing clean."""
    r = treadle.explore(name, bug=bug, strategy="bfs", out=None)
    assert r.verdict == "ok" and r.extra["complete"], r.extra["summary"]


@pytest.mark.slow
def test_pbft_normal_case_is_bounded_honestly() -> None:
    """PBFT's normal case (4 replicas, one request, asynchronous) does not complete in minutes:
    the run stops at the config's max_states and says so (complete false), with no violation.
    No seeded bug is reachable without a Byzantine replica or a view change."""
    cfg, bounds = split_config(get_system("pbft"), None)
    assert cfg["window"] >= 1_000_000 and cfg["byzantine"] == 0 and bounds["max_timer_fires"] == 0
    r = treadle.explore("pbft", strategy="dpor", out=None)
    assert r.verdict == "unknown"
    assert not r.extra["complete"] and r.extra["bounds_hit"] == ["states"]
    assert r.extra["executions_run"] == bounds["max_states"]
