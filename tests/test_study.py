"""The study page's data and exports, without a browser: every saved counterexample renders,
the recorded run is the replayed one, the exports are in their viewers' formats."""

from __future__ import annotations

import glob
import json
import os
import re

import pytest

from treadle.cli import main

HERE = os.path.dirname(os.path.abspath(__file__))
HISTORIES = os.path.join(HERE, "..", "histories")
FIGURE8 = os.path.join(HISTORIES, "raft", "figure8-leader-completeness-seed94.json")
LOCAL_READ = os.path.join(HISTORIES, "raft", "local-read-linearizability-seed0.json")


@pytest.fixture(scope="module")
def figure8():
    from treadle.study.extract import study_trace

    return study_trace(FIGURE8)


def test_recording_world_gives_the_recorded_history(figure8):
    from treadle import history as hist
    from treadle.trace import load_trace

    assert hist.digest(figure8.run.history) == load_trace(FIGURE8).history_sha256


def test_every_message_and_step_is_accounted_for(figure8):
    d = figure8.data
    taken = {s["msg"]: s["step"] for s in d["steps"] if s.get("msg") is not None}
    for m in d["messages"]:
        assert m["sent"] <= (m["taken"] if m["taken"] is not None else d["meta"]["steps"])
        assert taken.get(m["id"]) == m["taken"]
        assert m["fate"] in (
            "delivered",
            "duplicated",
            "dropped",
            "lost (down)",
            "lost (partition)",
            "in flight",
        )
    # a message taken while its receiver is down is lost, and drawn as lost
    for s in d["steps"]:
        if s.get("fate") == "lost (down)":
            assert any(sp["node"] == s["node"] and sp["from"] <= s["step"] for sp in d["down"])
    assert [s["step"] for s in d["steps"]] == list(range(1, d["meta"]["steps"] + 1))


def test_state_deltas_rebuild_every_snapshot(figure8):
    from treadle.study.extract import state_at

    for step in range(0, len(figure8.world.rec_states), 7):
        assert state_at(figure8.data, step) == json.loads(
            json.dumps(figure8.world.rec_states[step])
        )


def test_figure8_verdict_names_the_leader_and_the_wrong_commit(figure8):
    v = figure8.data["verdict"]
    d = v["details"]
    assert v["property"] == "Leader Completeness"
    assert v["step"] is not None and not v["final"]  # a per-step invariant: its own step
    assert set(v["refs"]["nodes"]) == {d["node"], d["committed_by"]}
    rel = {(r["step"], r["lane"], r["text"].split()[0]) for r in v["related"]}
    assert (v["step"], d["node"], "became-leader") in rel  # the later leader without the entry
    commits = [r for r in v["related"] if r["why"] == "commits"]
    # the earlier, wrong commit: the committer, in the committed term, up to the index or past
    assert commits and all(r["lane"] == d["committed_by"] for r in commits)
    assert all(f"term={d['committed_term']}" in r["text"] for r in commits)
    assert all(r["step"] < v["step"] for r in commits)
    # nothing is related by its history position alone (an event's own "index")
    for r in v["related"]:
        ev = figure8.run.history[r["event"]]
        named = {ev.get("log_index"), ev.get("term")} & set(
            v["refs"]["indexes"] + v["refs"]["terms"]
        )
        assert named or r["why"] != "names"


def test_describe_is_what_the_state_panel_shows(figure8):
    from treadle.study.extract import state_at

    v = figure8.data["verdict"]
    d = v["details"]
    st = state_at(figure8.data, v["step"])[d["node"]]
    assert st["role"] == "leader" and st["term"] == d["term"]
    entry = st["log"].get(str(d["index"]))  # the entry it holds there is not the committed one
    assert entry is None or not entry.startswith(f"t{d['committed_term']} ")
    commit = next(r for r in v["related"] if r["why"] == "commits")
    after = state_at(figure8.data, commit["step"])[d["committed_by"]]
    assert after["commit_index"] >= d["index"] and after["term"] == d["committed_term"]


@pytest.mark.parametrize(
    "path", sorted(glob.glob(os.path.join(HISTORIES, "*", "*.json"))), ids=os.path.basename
)
def test_every_saved_trace_renders(path, tmp_path):
    out = tmp_path / "p.html"
    from treadle.study import write_page

    write_page(path, str(out))
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    # self-contained: no external script, stylesheet, image or font
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=""", text)
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    data = json.loads(
        re.search(r'<script type="application/json" id="study-data">(.*?)</script>', text, re.S)
        .group(1)
        .replace("<\\/", "</")
    )
    # the page shows the verdict of the replay: what the trace recorded (a regression trace of
    # a fixed bug records none)
    from treadle.trace import load_trace

    recorded = load_trace(path).violation
    if recorded is None:
        assert data["verdict"] is None
    else:
        assert data["verdict"]["property"] == recorded["property"]
        assert data["verdict"]["step"] is not None


def test_show_terminal_filters_and_marks_the_violation(capsys, monkeypatch, figure8):
    monkeypatch.setenv("COLUMNS", "220")
    vstep = figure8.data["verdict"]["step"]
    node = figure8.data["verdict"]["details"]["node"]
    argv = ["show", FIGURE8, "--node", node, "--around", str(vstep), "--window", "3", "--state"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"✖ {vstep}" in out and "Leader Completeness fails here" in out
    assert f"{node} (changed)" in out
    steps = [int(m) for m in re.findall(r"^(?:✖ )?(\d+)\s", out, re.M)]
    assert steps and all(vstep - 3 <= s <= vstep for s in steps)
    assert main(["show", FIGURE8, "--node", "n9"]) == 2
    assert "no such node" in capsys.readouterr().err


def test_show_json_is_one_object(capsys, figure8):
    assert main(["show", FIGURE8, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "treadle-study/1"
    assert data["verdict"]["step"] == figure8.data["verdict"]["step"]


def test_explore_writes_the_page_beside_the_trace(capsys, tmp_path):
    out = tmp_path / "traces"
    code = main(
        ["explore", "example", "--bug", "stale-read", "--runs", "300", "--out", str(out), "--json"]
    )
    assert code == 1
    res = json.loads(capsys.readouterr().out)
    assert res["page"] == os.path.splitext(res["trace"])[0] + ".html"
    text = open(res["page"], encoding="utf-8").read()
    assert '<script type="application/json" id="study-data">' in text
    assert res["history_sha256"] in text


def test_a_600_step_5_node_trace_renders(tmp_path):
    """The size the page is made for: 600 steps, 5 servers, 3 clients (bench/study_page.py
    measures its size and first render)."""
    from treadle.study import write_page
    from treadle.study.sample import record_trace

    cfg = {"nodes": 5, "clients": 3, "ops_per_client": 20, "crash_rate": 0.01}
    t = record_trace("raft", cfg, seed=3, steps=600)
    assert t.steps == 600
    path = tmp_path / "r600.json"
    t.save(str(path))
    write_page(str(path), str(tmp_path / "r600.html"))
    size = os.path.getsize(tmp_path / "r600.html")
    assert size < 2_000_000  # a few hundred kB: it opens at once
