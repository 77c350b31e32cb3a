"""System options drawn per run (treadle.options): declared swarm values, drawn from the seed,
pinned by the user's --config, recorded in saved traces so replay is exact."""

from __future__ import annotations

from collections import Counter

import pytest

from treadle.config import ConfigError, Rule, flag, integer
from treadle.options import draw, free_options, run_config
from treadle.runner import explore, replay
from treadle.system import Cluster, System, get_system
from treadle.trace import load_trace

RAFT = get_system("raft")


def test_systems_declare_the_options_their_docs_describe():
    assert set(free_options(RAFT, {})) == {"prevote", "check_quorum", "snapshot_every", "tail_down"}
    assert "mode" in free_options(get_system("kv"), {})
    assert {"breaker_failures", "breaker_window"} <= set(free_options(get_system("mesh"), {}))


def test_draws_are_a_function_of_the_seed_and_cover_every_value():
    options = free_options(RAFT, {})
    seen = Counter()
    for seed in range(200):
        d = draw(options, seed)
        assert d == draw(options, seed)  # the same every time (and in every process: str seed)
        for k, v in d.items():
            assert v in options[k]
            seen[(k, v)] += 1
    assert set(seen) == {(k, v) for k, vs in options.items() for v in vs}
    assert draw(options, 1) != draw(options, 2) or draw(options, 1) != draw(options, 3)


def test_a_key_the_user_set_is_not_drawn():
    options = free_options(RAFT, {"prevote": "true"})
    assert "prevote" not in options and "check_quorum" in options
    cfg = RAFT.resolve_config({"prevote": "true"})
    assert all(run_config(cfg, options, s)["prevote"] is True for s in range(20))


def test_values_a_rule_refuses_are_not_drawn():
    sys_ = System(
        name="opts-test",
        description="",
        build=lambda c, b: Cluster(servers={}),
        config_keys=[
            integer("low", 1, "", swarm=(1, 5, 9)),
            integer("high", 6, ""),
            flag("alone", False, "", swarm=(True,)),
        ],
        config_rules=[Rule(("low", "high"), lambda c: c["low"] <= c["high"], "low <= high")],
    )
    assert free_options(sys_, {}) == {"low": (1, 5)}  # 9 > high; one value is no choice
    assert free_options(sys_, {"high": "10"}) == {"low": (1, 5, 9)}
    with pytest.raises(ConfigError):
        integer("k", 0, "", minimum=0, swarm=(-1, 0))  # a swarm value out of range


def test_a_violating_run_saves_its_drawn_options_and_replays(tmp_path):
    # random: its runs take their seed's own draw (a guided child runs under its parent's
    # options instead; tests/test_guided.py checks those replay too)
    r = explore(
        "raft",
        bug="no-persist-vote",
        strategy="random",
        seed=0,
        runs=400,
        out=str(tmp_path),
        shrink_time=0,
    )
    assert r.verdict == "violation" and r.trace
    trace = load_trace(r.trace)
    drawn = trace.extra["strategy_run"]["options"]
    assert drawn == draw(free_options(RAFT, {}), trace.seed)
    assert {k: trace.config[k] for k in drawn} == drawn
    again = replay(r.trace)
    assert again.matches and again.run.violation.property == r.violation.property


def test_explorations_run_under_the_drawn_options():
    # the options reach the nodes: some runs have PreVote on, some off
    seen = set()
    options = free_options(RAFT, {})
    cfg = RAFT.resolve_config({})
    for seed in range(16):
        seen.add(run_config(cfg, options, seed)["prevote"])
    assert seen == {False, True}
    r = explore("raft", seed=0, runs=16, out=None, check_determinism=True)
    assert r.verdict == "ok", r.summary()


def test_campaign_swarm_configs_draw_the_options_and_record_them(tmp_path):
    from treadle.campaign import campaign

    r = campaign(
        "raft",
        bug="no-dedup",
        runs=30,
        seed=0,
        db=str(tmp_path / "db.sqlite"),
        out=str(tmp_path),
    )
    assert r.failing_runs, "no failing run in 30 swarm runs of no-dedup"
    traces = sorted(tmp_path.rglob("*.json"))
    assert traces
    for path in traces:
        trace = load_trace(str(path))
        drawn = trace.extra["strategy_run"]["options"]
        assert {k: trace.config[k] for k in drawn} == drawn
        assert replay(str(path)).matches


def test_triage_reruns_each_seed_under_its_own_drawn_options(tmp_path, monkeypatch):
    """Seeds of one failure may have drawn other options; triage must not re-run them all under
    the first seed's configuration (a seed that fails only under its own draw would then look
    fixed)."""
    import treadle.campaign as camp
    from treadle.seeds import SeedDB

    db = str(tmp_path / "db.sqlite")
    r = camp.campaign("raft", bug="no-dedup", runs=30, seed=0, db=db, out=None)
    with SeedDB(db) as sdb:
        recorded = {
            seed: cfg for f in sdb.failures("raft") for seed, cfg in sdb.seed_configs(f.id, 5)
        }
    options = free_options(RAFT, {})
    drawn = {s: {k: cfg[k] for k in options} for s, cfg in recorded.items()}
    assert r.failing_runs and len({tuple(sorted(d.items())) for d in drawn.values()}) > 1, (
        "the test needs failing seeds with different draws"
    )
    ran: dict[int, dict] = {}
    real = camp.run_seed

    def spy(system, spec, strategy, seed):
        ran[seed] = {k: spec.config[k] for k in options}
        return real(system, spec, strategy, seed)

    monkeypatch.setattr(camp, "run_seed", spy)
    t = camp.triage(db)
    assert ran == drawn
    assert all(i.status == "still failing" for i in t.items)


def test_a_seed_database_from_before_per_seed_configs_still_opens(tmp_path):
    import sqlite3

    from treadle.seeds import SeedDB

    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE failing_seeds (failure INTEGER NOT NULL, seed INTEGER NOT NULL,"
        " seen TEXT NOT NULL, PRIMARY KEY (failure, seed));"
    )
    conn.close()
    with SeedDB(path) as sdb:
        cols = {row[1] for row in sdb.conn.execute("PRAGMA table_info(failing_seeds)")}
        assert "config" in cols
