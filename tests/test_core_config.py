"""Declared configuration: every key of every layer has a type, a range and a default, and a bad
value is one line and exit 2 before any run starts."""

from __future__ import annotations

import json

import abd_register
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import treadle
from treadle.cli import main
from treadle.config import ConfigError, at_most, integer
from treadle.exhaustive import EXPLORER_SCHEMA, split_config
from treadle.system import System, all_systems, register

register(abd_register.system)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


BAD = [
    # (system, strategy, config items, what the one line must name)
    ("example", None, ["drop_rate=-0.5"], ["drop_rate=-0.5", "[0, 1]"]),
    ("example", None, ["drop_rate=1.5"], ["drop_rate=1.5", "[0, 1]"]),
    ("example", None, ["drop_rate=nan"], ["drop_rate=nan", "[0, 1]"]),
    ("example", None, ["heal_rate=inf"], ["heal_rate=inf", "[0, 1]"]),
    ("example", None, ["latency_min=5", "latency_max=1"], ["latency_min=5", "latency_max=1"]),
    ("example", None, ["latency_min=-3"], ["latency_min=-3", ">= 0"]),
    ("example", None, ["timer_drift=-5"], ["timer_drift=-5", ">= 0"]),
    ("example", None, ["ordering=banana"], ["ordering=banana", "unordered, fifo"]),
    ("example", None, ["pct_depth=-2"], ["pct_depth=-2", ">= 1"]),
    ("example", None, ["window=-1"], ["window=-1", ">= 0"]),
    ("example", None, ["torn_writes=maybe"], ["torn_writes=maybe", "true or false"]),
    ("example", None, ["clients=many"], ["clients=many", "integer"]),
    ("example", None, ["script=write,jump"], ["script=write,jump", "read, write, cas"]),
    ("example", None, ["max_depth=3"], ["max_depth", "dfs, bfs or dpor"]),
    (
        "raft",
        None,
        ["election_timeout_min=30"],
        ["election_timeout_min=30", "election_timeout_max=20", "<="],
    ),
    ("raft", None, ["nodes=0"], ["nodes=0", "[1, 15]"]),
    ("raft", None, ["client_op=fly"], ["client_op=fly", "mixed"]),
    ("raft", "bfs", ["max_crashes=abc"], ["max_crashes=abc", "integer"]),
    ("raft", "dfs", ["max_depth=1.5"], ["max_depth=1.5", "integer >= 1"]),
    ("raft", "dpor", ["max_states=0"], ["max_states=0", ">= 1"]),
    ("kv", None, ["replicas=9"], ["replicas=9", "members=4"]),
    ("kv", None, ["sloppy_clock=sundial"], ["sloppy_clock=sundial", "now, lamport"]),
    ("pbft", None, ["byzantine=9"], ["byzantine=9", "3f + 1"]),
    ("pbft", None, ["byzantine_mode=evil"], ["byzantine_mode=evil", "silent"]),
    ("mesh", None, ['lb={"b": "random"}'], ["lb=", "p2c"]),
    ("mesh", None, ['routes={"/a": {"zz": 1}}'], ["routes=", "instances"]),
    ("mesh", None, ["arrival_gap=[5, 1]"], ["arrival_gap=[5, 1]", "min <= max"]),
    ("eventstore", None, ["snapshot_every=0"], ["snapshot_every=0", ">= 1"]),
    ("twophase", "bfs", ["rms=0"], ["rms=0", "[1, 9]"]),
    ("abd", None, ["servers=0"], ["servers=0", "[1, 9]"]),
    ("abd", None, ["min_ops=5", "ops=2"], ["min_ops=5", "ops=2", "min_ops <= ops"]),
]


@pytest.mark.parametrize("system, strategy, items, needles", BAD)
def test_bad_config_is_one_line_and_exit_2(capsys, tmp_path, system, strategy, items, needles):
    argv = ["explore", system, "--runs", "1", "--out", str(tmp_path)]
    if strategy:
        argv += ["--strategy", strategy]
    for item in items:
        argv += ["--config", item]
    code, out, err = cli(capsys, *argv)
    assert code == 2, (out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert "expected" in err or "dfs, bfs or dpor" in err
    assert not any(tmp_path.iterdir())  # no run, no trace


def test_bad_config_is_refused_before_any_run():
    builds = []

    def build(config, bug):
        builds.append(1)
        return abd_register.ticker.build({"raise_at": 100}, bug)

    sys_ = System("counted", "", build, config_keys=[integer("k", 1, "", minimum=0, maximum=3)])
    for bad in ({"k": 4}, {"k": -1}, {"k": "x"}, {"drop_rate": 2.0}, {"latency_max": 0}):
        with pytest.raises(ValueError):
            treadle.explore(sys_, runs=5, config=bad, out=None)
        with pytest.raises(ConfigError):
            treadle.explore(sys_, strategy="bfs", config=bad, out=None)
    assert builds == []


def test_python_api_values_are_type_checked():
    with pytest.raises(ValueError, match=r"config drop_rate=1.5: expected a number in \[0, 1\]"):
        treadle.explore("example", runs=1, config={"drop_rate": 1.5}, out=None)
    with pytest.raises(ValueError, match="config clients=true: expected an integer"):
        treadle.explore("example", runs=1, config={"clients": True}, out=None)
    cfg = abd_register.system.resolve_config({"ops": "3", "drop_rate": "0.5", "latency_max": 9})
    assert cfg["ops"] == 3 and cfg["drop_rate"] == 0.5 and cfg["latency_max"] == 9


def test_user_system_declares_keys_and_rules():
    sys_ = System(
        "mine",
        "",
        abd_register.ticker.build,
        config_keys=[integer("lo", 1, "low"), integer("hi", 5, "high")],
        config_rules=[at_most("lo", "hi")],
    )
    assert sys_.resolve_config({"lo": "5"})["lo"] == 5
    with pytest.raises(ConfigError, match="config lo=6, hi=5: expected lo <= hi"):
        sys_.resolve_config({"lo": 6})
    with pytest.raises(ConfigError, match="config hi=-1: expected an integer >= 0 \\(high\\)"):
        sys_.resolve_config({"hi": -1})


def test_undeclared_keys_of_a_user_system_get_the_type_of_their_default():
    sys_ = System("loose", "", abd_register.ticker.build, defaults={"n": 2, "name": "x"})
    assert sys_.resolve_config({"n": "4"})["n"] == 4
    with pytest.raises(ConfigError, match="config n=four: expected an integer"):
        sys_.resolve_config({"n": "four"})
    layers = {k.name: k.doc for k in sys_.schema().keys.values()}
    assert "undeclared" in layers["n"]


def test_every_project_system_declares_every_key_and_its_defaults_are_valid():
    systems = all_systems()
    for name in ("example", "raft", "pbft", "kv", "eventstore", "mesh", "twophase"):
        s = systems[name]
        undeclared = [k.name for k in s.schema().keys.values() if "undeclared" in k.doc]
        assert undeclared == [], (name, undeclared)
        s.resolve_config()  # the defaults are in range
        cfg, bounds = split_config(s, None)  # and so is the exhaustive config
        assert set(bounds) == set(EXPLORER_SCHEMA.keys)


def test_list_system_config_json_shows_type_range_default(capsys):
    code, out, _ = cli(capsys, "list", "raft", "--config", "--json")
    assert code == 0
    data = json.loads(out)
    rows = {r["name"]: r for r in data["config"]}
    assert rows["drop_rate"]["type"] == "float" and rows["drop_rate"]["range"] == "[0, 1]"
    assert rows["drop_rate"]["default"] == 0.03  # raft's own default for a world key
    assert rows["nodes"]["layer"] == "system" and rows["nodes"]["range"] == "[1, 15]"
    assert rows["ordering"]["choices"] == ["unordered", "fifo"]
    assert (
        rows["max_depth"]["layer"] == "exhaustive" and rows["max_depth"]["exhaustive_default"] == 80
    )
    assert rows["pct_depth"]["layer"] == "strategy"
    assert "election_timeout_min <= election_timeout_max" in data["rules"]
    assert all({"type", "range", "default", "doc"} <= set(r) for r in data["config"])
    code, out, _ = cli(capsys, "list", "abd", "--config")
    assert code == 0
    assert "raise_after_puts" in out and "min_ops <= ops" in out
    code, _, err = cli(capsys, "list", "--config")
    assert code == 2 and "SYSTEM" in err


def test_replay_refuses_a_trace_whose_config_is_out_of_range(capsys, tmp_path):
    r = treadle.explore("abd", bug="raise-in-handler", runs=50, out=str(tmp_path), shrink_time=0)
    data = json.loads(open(r.trace).read())
    data["config"]["drop_rate"] = 7
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    code, out, err = cli(capsys, "replay", str(bad))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(bad) in err and "drop_rate=7" in err


VALUES = st.one_of(
    st.integers(-10, 10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
    st.sampled_from(["1", "-1", "0.5", "nan", "inf", "true", "fifo", "[1, 2]", "{}", ""]),
    st.none(),
    st.lists(st.integers(-2, 5), max_size=3),
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(name=st.sampled_from(sorted(all_systems())), data=st.data())
def test_fuzzed_config_is_accepted_in_range_or_refused_with_a_config_error(name, data):
    system = all_systems()[name]
    keys = sorted(system.schema().keys) + ["no_such_key"]
    chosen = data.draw(st.lists(st.sampled_from(keys), max_size=4, unique=True))
    items = {k: data.draw(VALUES) for k in chosen}
    try:
        cfg = system.resolve_config(items)
    except ConfigError as e:
        assert str(e).startswith(("config ", "unknown config key")), str(e)
        assert "\n" not in str(e)
        return
    schema = system.schema()
    for k, v in cfg.items():
        schema.keys[k].validate(v)  # every accepted value is in range
    for rule in schema.rules:
        rule.check(cfg)
