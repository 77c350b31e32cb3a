"""The CLI contract and the example system end to end: explore, shrink, save, replay, show, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import treadle
from treadle.cli import main
from treadle.trace import load_trace


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    out = tmp_path_factory.mktemp("traces")
    r = treadle.explore("example", bug="stale-read", seed=0, runs=300, out=str(out), shrink_time=20)
    assert r.verdict == "violation", r.summary()
    return r


def test_list_json(capsys):
    code, out, _ = cli(capsys, "list", "--json")
    assert code == 0
    data = json.loads(out)
    ex = [s for s in data["systems"] if s["name"] == "example"][0]
    assert {b["name"] for b in ex["bugs"]} == {"stale-read"}
    assert {"random", "pct", "swarm"} <= set(data["strategies"])


def test_explore_finds_the_example_bug_and_shrinks_it(found):
    assert found.violation.property == "linearizability"
    assert found.trace and os.path.exists(found.trace)
    assert found.replay == f"treadle replay {found.trace}"
    assert found.shrunk["choices"] <= found.shrunk["from_choices"]
    assert found.shrunk["steps"] <= found.shrunk["from_steps"]


def test_replay_reproduces_the_digest(capsys, found):
    code, out, _ = cli(capsys, "replay", found.trace, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["history_sha256"] == found.history_sha256
    assert data["violation"]["property"] == "linearizability"
    assert data["reproduces_recorded_violation"] is True


def test_replay_in_another_process_is_byte_identical(found, tmp_path):
    hist_path = tmp_path / "h.jsonl"
    env = dict(os.environ, PYTHONHASHSEED="123")
    p = subprocess.run(
        [sys.executable, "-m", "treadle.cli", "replay", found.trace, "--history", str(hist_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1, p.stderr
    import hashlib

    assert hashlib.sha256(hist_path.read_bytes()).hexdigest() == found.history_sha256


def test_shrink_command_keeps_the_violation(capsys, found, tmp_path):
    out = tmp_path / "small.json"
    code, text, _ = cli(capsys, "shrink", found.trace, "--out", str(out), "--time", "5", "--json")
    assert code == 1
    data = json.loads(text)
    small = load_trace(str(out))
    assert len(small.choices) <= len(load_trace(found.trace).choices)
    assert data["violation"]["property"] == "linearizability"


def test_show_prints_a_timeline(capsys, found):
    code, out, _ = cli(capsys, "show", found.trace)
    assert code == 0
    assert "deliver" in out and "violation" in out and "linearizability" in out


def test_correct_example_is_clean(capsys):
    code, out, _ = cli(capsys, "explore", "example", "--runs", "60", "--json", "--out", "/tmp/none")
    assert code == 0, out
    data = json.loads(out)
    assert data["verdict"] == "ok" and data["runs"] == 60 and data["events"] > 0
    for key in (
        "system",
        "bug",
        "strategy",
        "seed",
        "elapsed_s",
        "violation",
        "trace",
        "replay",
        "history_sha256",
    ):
        assert key in data


def test_explore_json_on_violation(capsys, tmp_path):
    code, out, _ = cli(
        capsys,
        "explore",
        "example",
        "--bug",
        "stale-read",
        "--runs",
        "300",
        "--shrink-time",
        "2",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert code == 1
    data = json.loads(out)
    assert data["verdict"] == "violation" and data["trace"].startswith(str(tmp_path))
    assert data["replay"].startswith("treadle replay ")


def test_python_api_failure_message_carries_the_replay_command(tmp_path):
    r = treadle.explore("example", bug="stale-read", runs=300, out=str(tmp_path), shrink_time=1)
    with pytest.raises(AssertionError, match="treadle replay"):
        r.assert_ok()


def test_check_determinism_flag(capsys):
    code, out, err = cli(
        capsys,
        "explore",
        "example",
        "--runs",
        "3",
        "--check-determinism",
        "--json",
        "--out",
        "/tmp/none",
    )
    assert code == 0, err


# ---------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["explore", "nosuch"], "unknown system 'nosuch'"),
        (["explore", "example", "--bug", "nosuch"], "unknown bug 'nosuch'"),
        (["explore", "example", "--strategy", "nosuch"], "unknown strategy 'nosuch'"),
        (["explore", "example", "--config", "nosuch=1"], "unknown config key 'nosuch'"),
        (
            ["explore", "example", "--config", "clients=many"],
            "config clients=many: expected an integer",
        ),
        (["replay", "/nonexistent/trace.json"], "no such trace file"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(capsys, argv, needle):
    code, out, err = cli(capsys, *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_malformed_trace_names_file_and_line(capsys, tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"format": "treadle-trace/1",\n "system": "example",\n "seed": ')
    code, _, err = cli(capsys, "replay", str(p))
    assert code == 2 and f"{p}:" in err and "truncated" in err


def test_trace_from_another_version_is_refused(capsys, found, tmp_path):
    d = json.loads(open(found.trace).read())
    d["system_version"] = "0-old"
    p = tmp_path / "old.json"
    p.write_text(json.dumps(d))
    code, _, err = cli(capsys, "replay", str(p))
    assert code == 2 and "trace does not match system example" in err


def test_trace_with_tampered_choices_is_refused(capsys, found, tmp_path):
    d = json.loads(open(found.trace).read())
    d["choices"] = [c + 1 for c in d["choices"]]
    p = tmp_path / "tampered.json"
    p.write_text(json.dumps(d))
    code, _, err = cli(capsys, "replay", str(p))
    assert code == 2 and "trace does not match system example" in err


def test_malformed_history_names_file_and_line(capsys, tmp_path):
    p = tmp_path / "h.jsonl"
    p.write_text('{"type": "invoke", "process": 1, "f": "read", "value": null}\n{"type": \n')
    code, _, err = cli(capsys, "show", str(p))
    assert code == 2 and f"{p}:2:" in err


def test_pytest_fixture_runs_an_exploration(treadle_explore):
    result = treadle_explore("example", runs=20)
    assert result.verdict == "ok" and result.runs == 20


def test_pytest_fixture_fails_with_the_replay_command(treadle_explore):
    with pytest.raises(AssertionError, match="treadle replay"):
        treadle_explore("example", bug="stale-read", runs=300, shrink_time=1)


def test_messages_with_brackets_are_printed_verbatim(capsys, tmp_path):
    from treadle.checkers.result import CheckResult

    from treadle.node import Node
    from treadle.system import Cluster, System, register

    class Tick(Node):
        def on_start(self, ctx):
            ctx.set_timer("t", 1)

        def on_timer(self, ctx, name):
            ctx.record("tick")

    def inv(world):
        if world.history:
            return CheckResult.violation(
                "Log Matching", "n1 has [index 1, term 2] but n2 has [bold]x[/bold]"
            )
        return None

    register(System("brackets", "", lambda c, b: Cluster(servers={"n1": Tick}), invariants=[inv]))
    code, out, _ = cli(capsys, "explore", "brackets", "--runs", "1", "--out", str(tmp_path))
    assert code == 1
    assert "[index 1, term 2]" in out and "[bold]x[/bold]" in out


def test_trace_from_before_a_new_config_key_still_replays(capsys, found, tmp_path):
    d = json.loads(open(found.trace).read())
    del d["config"]["pct_depth"]  # as if recorded before the key existed
    p = tmp_path / "older.json"
    p.write_text(json.dumps(d))
    code, out, _ = cli(capsys, "replay", str(p), "--json")
    assert code == 1 and json.loads(out)["history_sha256"] == found.history_sha256
    d["config"]["no_such_key"] = 1
    p.write_text(json.dumps(d))
    code, _, err = cli(capsys, "replay", str(p))
    assert code == 2 and "no_such_key" in err


def test_shrink_leaves_its_input_alone_unless_asked(tmp_path, capsys, monkeypatch):
    """`treadle shrink TRACE` writes a new trace under .treadle/ (never the user's file, which
    may be a tracked regression trace); --in-place overwrites it and redraws its page."""
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "mine.json"
    code, _, _ = cli(
        capsys,
        "explore",
        "example",
        "--bug",
        "stale-read",
        "--runs",
        "40",
        "--shrink-runs",
        "20",
        "--workers",
        "1",
        "--json",
    )
    assert code == 1
    [trace] = list((tmp_path / ".treadle" / "traces" / "example").glob("*.json"))
    src.write_bytes(trace.read_bytes())
    before = src.read_bytes()
    code, text, _ = cli(capsys, "shrink", str(src), "--runs", "50", "--json")
    assert code == 1
    obj = json.loads(text)
    assert src.read_bytes() == before  # untouched
    assert obj["trace"].startswith(os.path.join(".treadle", "traces", "example"))
    assert obj["trace"].endswith("mine-shrunk.json") and os.path.exists(obj["page"])
    code, text, _ = cli(capsys, "shrink", str(src), "--runs", "50", "--json")
    assert json.loads(text)["trace"].endswith("mine-shrunk-2.json")  # never overwrites either
    (tmp_path / "mine.html").write_text("stale")
    code, text, _ = cli(capsys, "shrink", str(src), "--runs", "50", "--in-place", "--json")
    assert code == 1 and json.loads(text)["trace"] == str(src)
    assert (tmp_path / "mine.html").read_text() != "stale"
    code, _, err = cli(capsys, "shrink", str(src), "--in-place", "--out", "x.json")
    assert code == 2 and len(err.strip().splitlines()) == 1
