"""PBFT replicas and clients describe their state for the study page (impl/pbft/describe.py),
checked step by step against what the replicas recorded in the history: the protocol events
are an independent account of the views, checkpoints and executions."""

from __future__ import annotations

import os

import pytest

from treadle.study.extract import study_trace
from treadle.study.sample import record_trace

HISTORIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "histories")
WEAK_QUORUM = os.path.join(HISTORIES, "pbft", "weak-quorum-agreement-seed2.json")


@pytest.fixture(scope="module", params=[0, 1])
def study(request, tmp_path_factory):
    """An 800-step run with checkpoints, view changes and a Byzantine replica, no crashes (a
    crash would restart a replica from storage, which the history does not spell out)."""
    trace = record_trace("pbft", {"crash_rate": 0.0, "ops_per_client": 6}, seed=request.param)
    path = tmp_path_factory.mktemp("pbft") / "run.json"
    trace.save(str(path))
    return study_trace(str(path))


def test_every_step_agrees_with_the_recorded_protocol_events(study):
    window = int(study.data["meta"]["config"]["watermark_window"])
    replicas = [lane["id"] for lane in study.data["lanes"] if lane["id"].startswith("n")]
    by_step: dict[int, list[dict]] = {}
    for e in study.data["events"]:
        by_step.setdefault(e["_step"], []).append(e)
    seen = {n: {"h": 0, "view": 0, "vc": False, "exec": 0, "digests": {}} for n in replicas}
    kinds = set()
    for step, states in enumerate(study.world.rec_states):
        for e in by_step.get(step, []):
            o = seen.get(e.get("node"))
            if o is None:
                continue
            kinds.add(e["type"])
            if e["type"] == "stable-checkpoint":
                o["h"] = e["seq"]
            elif e["type"] == "view-change":
                o["view"], o["vc"] = e["view"], True
            elif e["type"] == "new-view":
                o["view"], o["vc"] = e["view"], False
            elif e["type"] == "execute":
                o["exec"] = max(o["exec"], e["seq"])
                o["digests"][e["seq"]] = e["digest"]
        for n in replicas:
            d, o = states[n], seen[n]
            if d.get("status") == "not started":
                continue
            assert d["view"] == o["view"], (step, n, d)
            assert d["status"] == (f"view change to v{o['view']}" if o["vc"] else "normal")
            assert d["watermarks"] == f"h={o['h']}, H={o['h'] + window}"
            assert d["checkpoint"].startswith(f"stable at {o['h']} ")
            assert d["last_executed"] >= o["exec"]
            for seq, digest in o["digests"].items():
                if seq > o["h"]:  # below the stable checkpoint the messages are collected
                    assert d["seq"][str(seq)] == f"executed {digest[:8]}", (step, n, seq)
            for seq, phase in d["seq"].items():
                assert int(seq) > o["h"] or phase.startswith("executed"), (step, n, seq, phase)
                assert int(seq) <= o["h"] + window or phase.startswith(("executed", "committed"))
    # the run is one that exercises what the description is about
    assert {"stable-checkpoint", "view-change", "new-view", "execute"} <= kinds


def test_one_replica_is_the_primary_of_each_view_and_clients_show_their_request(study):
    last = study.world.rec_states[-1]
    views = {}
    for node, d in last.items():
        if node.startswith("n") and "role" in d:
            views.setdefault(d["view"], []).append(d["role"])
    for view, roles in views.items():
        primaries = [r for r in roles if r == "primary"]
        backups = {r for r in roles if r != "primary"}
        assert len(primaries) <= 1 and len(backups) <= 1, (view, roles)
    clients = [d for node, d in last.items() if node.startswith("c")]
    assert clients and all("ops_left" in d and "request" in d for d in clients)
    busy = [
        d
        for states in study.world.rec_states
        for node, d in states.items()
        if node.startswith("c") and d.get("request")
    ]
    assert busy and all(d["tries"].endswith("of 5") for d in busy)  # client_retries 4: 5 tries


def test_the_weak_quorum_page_shows_the_disagreement_and_the_low_quorum():
    st = study_trace(WEAK_QUORUM)
    v = st.data["verdict"]
    states = st.world.rec_states[v["step"]]
    (seq,) = v["refs"]["indexes"]
    phases = {states[n]["seq"].get(str(seq)) for n in v["refs"]["nodes"]}
    # Agreement fails: the two replicas it names executed different requests at that number
    assert len(phases) == 2 and all(p.startswith("executed ") for p in phases), phases
    # the seeded bug lowers the prepare quorum from 2f = 2 to 1, and the description says so
    seen = [p for s in st.world.rec_states for d in s.values() for p in d.get("seq", {}).values()]
    assert any("prepares 1/1" in p for p in seen)
    assert not any("/2," in p for p in seen if "prepares" in p)


def test_chips_keep_the_newest_numbered_entries():
    from treadle.study.record import MAX_CHIPS, display_value

    log = {str(i): f"entry {i}" for i in range(1, 101)}
    shown = display_value(log)
    kept = [k for k in shown if k != "…"]
    assert kept == [str(i) for i in range(101 - MAX_CHIPS, 101)]
    assert shown["…"] == f"{100 - MAX_CHIPS} earlier items"
