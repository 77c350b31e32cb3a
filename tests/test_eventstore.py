"""The event store: seeded bugs found, the correct store clean, the offline checker and the
stream model judged on hand-written and recorded histories."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from treadle.checkers.eventstore import Monitor, check_final, check_history
from treadle.impl.eventstore.messages import Recorded
from treadle.impl.eventstore.store import Store, checksum, encode
from treadle.impl.eventstore.system import system
from treadle.models.model import UNKNOWN, Call
from treadle.models.stream import MODEL as STREAM

from treadle.history import write_jsonl
from treadle.node import Storage
from treadle.runner import explore, replay, run_once
from treadle.strategies import Recorder, make_strategy

ROOT = Path(__file__).resolve().parents[1]
TRACES = sorted((ROOT / "histories" / "eventstore").glob("*.json"))

EXPECTED = {
    "non-atomic-version-check": {"Optimistic Concurrency", "Stream Version Contiguity"},
    "snapshot-off-by-one": {"Snapshot Consistency", "Replay Equivalence"},
    "no-fsync": {"Durability"},
    "replay-from-zero": {"Replay Equivalence"},
}


# ---------------------------------------------------------------------------- exploration
@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_seeded_bug_is_found(bug, tmp_path):
    r = explore(system, bug=bug, seed=0, runs=200, out=str(tmp_path), shrink_time=5)
    assert r.verdict == "violation", f"{bug} not found in {r.runs} runs"
    assert r.violation is not None and r.violation.property in EXPECTED[bug]
    assert r.trace is not None and Path(r.trace).exists()
    again = replay(r.trace)
    assert again.matches and again.run.violation.property == r.violation.property


def test_correct_store_survives_exploration(tmp_path):
    r = explore(system, seed=7, runs=150, out=str(tmp_path))
    assert r.verdict == "ok", r.summary()
    assert r.events > 150 * 50  # the runs did real work


def test_exhaustive_config_runs_clean(tmp_path):
    from treadle.exhaustive import EXPLORER_DEFAULTS  # bounds (max_crashes) are not config keys

    cfg = {k: v for k, v in system.exhaustive.items() if k not in EXPLORER_DEFAULTS}
    r = explore(system, seed=0, runs=30, config=cfg, out=str(tmp_path))
    assert r.verdict == "ok", r.summary()


@pytest.mark.parametrize("path", TRACES, ids=[p.name for p in TRACES])
def test_saved_counterexample_replays(path):
    r = replay(str(path))
    assert r.matches
    assert r.run.violation is not None
    assert r.run.violation.property == r.trace.violation["property"]
    assert r.trace.bug in EXPECTED and r.run.violation.property in EXPECTED[r.trace.bug]


def test_every_bug_has_a_saved_trace():
    saved = {json.loads(p.read_text())["bug"] for p in TRACES}
    assert saved == set(EXPECTED)


def _history(bug=None, seed=3, steps=300, checks=True):
    sys_ = system if checks else dataclasses.replace(system, invariants=[], final_checks=[])
    cfg = system.resolve_config()
    strat = make_strategy("mixed")
    strat.begin_run(seed, cfg, steps)
    return run_once(sys_, cfg, bug, Recorder(strat), steps)


# ---------------------------------------------------------------------------- offline checker
def test_offline_checker_on_saved_jsonl_and_cli(tmp_path):
    r = _history(seed=5)
    assert r.violation is None
    assert any(e["type"] == "appended" for e in r.history)
    path = tmp_path / "es.jsonl"
    write_jsonl(str(path), r.history)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert check_history(events).ok  # tuples became lists: still equal
    cli = subprocess.run(
        [sys.executable, "-m", "treadle.cli", "check", str(path), "--model", "eventstore"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr


def test_offline_checker_finds_a_lost_update_in_a_full_history():
    for seed in range(40):
        r = _history("non-atomic-version-check", seed=seed, checks=False)
        result = check_history(r.history)
        if result.violated:
            assert result.property in EXPECTED["non-atomic-version-check"]
            return
    pytest.fail("no lost update in 40 runs of the buggy store")


def appended(pos, stream, version, event_id, type_="Deposited", data=None, expected="any", batch=0):
    return {
        "type": "appended",
        "node": "n1",
        "stream": stream,
        "version": version,
        "position": pos,
        "event_id": event_id,
        "event_type": type_,
        "data": {"amount": 5} if data is None and type_ != "AccountOpened" else (data or {}),
        "expected": expected,
        "batch": batch,
    }


OPEN = appended(1, "account-A", 1, "e1", "AccountOpened", expected="no-stream")


def op(type_, value, process="c1"):
    """A client's append operation on account-A (invoke value [expected, [event ids]])."""
    return {"type": type_, "process": process, "f": "append", "key": "account-A", "value": value}


def append_outcome_passes():
    """Every answer a correct store gives: a refusal before anything is stored, a retry of a
    stored append answered ok at its versions, a timed-out append stored later."""
    second = appended(2, "account-A", 2, "e2", "Deposited", expected="no-stream", batch=1)
    return [
        op("invoke", [1, ["e0"]]),
        {"type": "rejected", "stream": "account-A", "expected": 1, "actual": 0},
        {**op("fail", [1, ["e0"]]), "error": "wrong-version", "actual": 0},
        op("invoke", ["no-stream", ["e1", "e2"]]),
        OPEN,
        second,
        {
            "type": "deduplicated",
            "stream": "account-A",
            "event_ids": ["e1", "e2"],
            "first_version": 1,
        },
        {**op("ok", [1, 2]), "positions": [1, 2]},
        op("invoke", ["any", ["e3"]], process="c2"),
        op("info", ["any", ["e3"]], process="c2"),
        appended(3, "account-A", 3, "e3"),
    ]


def test_clean_hand_written_history_passes():
    events = [
        OPEN,
        appended(2, "account-A", 2, "e2", expected="any"),
        appended(3, "account-A", 3, "e3", "Withdrawn", {"amount": 5}, expected=2),
        {"type": "rejected", "stream": "account-A", "expected": 2, "actual": 3},
        {"type": "deduplicated", "stream": "account-A", "event_ids": ["e2"], "first_version": 2},
        {"type": "snapshot_saved", "stream": "account-A", "version": 2, "state": 5},
        {"type": "loaded", "stream": "account-A", "version": 3, "state": 0},
        {"type": "projected", "position": 2, "stream": "account-A", "view": 5},
    ]
    assert check_history(events).ok
    assert check_history(append_outcome_passes()).ok


def _fail(ids, error="event-id-reused"):
    return {**op("fail", ["no-stream", ids]), "error": error}


APPEND_OUTCOME_VIOLATIONS = {
    # a retry of a stored append answered as failed (store.py's event-id-reused path)
    "failed but stored": [op("invoke", ["no-stream", ["e1"]]), OPEN, _fail(["e1"])],
    # a refusal, and the refused events stored afterwards
    "failed then stored": [
        op("invoke", ["no-stream", ["e1"]]),
        _fail(["e1"], "wrong-version"),
        OPEN,
    ],
    # half of a batch stored, the append answered failed
    "failed, part stored": [
        op("invoke", ["no-stream", ["e1", "e2"]]),
        OPEN,
        _fail(["e1", "e2"]),
    ],
    # two events told one version
    "ok, too few versions": [
        op("invoke", ["no-stream", ["e1", "e2"]]),
        OPEN,
        appended(2, "account-A", 2, "e2", expected="no-stream", batch=1),
        {**op("ok", [1, 1]), "positions": [1, 2]},
    ],
    # two events told one position
    "ok, too few positions": [
        op("invoke", ["no-stream", ["e1", "e2"]]),
        OPEN,
        appended(2, "account-A", 2, "e2", expected="no-stream", batch=1),
        {**op("ok", [1, 2]), "positions": [1]},
    ],
}


@pytest.mark.parametrize("name", sorted(APPEND_OUTCOME_VIOLATIONS))
def test_append_outcome_violations(name):
    result = check_history(APPEND_OUTCOME_VIOLATIONS[name])
    assert result.violated and result.property == "Append Outcome", result
    assert result.message


def test_append_outcome_every_prefix_of_a_passing_history_passes():
    events = append_outcome_passes()
    for n in range(len(events) + 1):
        assert check_history(events[:n]).ok, n


@pytest.mark.parametrize(
    "events, prop",
    [
        ([OPEN, appended(2, "account-A", 2, "e2", expected=0)], "Optimistic Concurrency"),
        ([OPEN, appended(2, "account-A", 1, "e2")], "Stream Version Contiguity"),
        ([OPEN, appended(2, "account-A", 3, "e2")], "Stream Version Contiguity"),
        ([OPEN, appended(1, "account-B", 1, "e2", "AccountOpened")], "Global Order"),
        ([OPEN, appended(2, "account-A", 2, "e1")], "Idempotent Append"),
        (
            [OPEN, appended(2, "account-A", 2, "e2", "Withdrawn", {"amount": 1}, expected=1)],
            "Balance Never Negative",
        ),
        (
            [OPEN, {"type": "rejected", "stream": "account-A", "expected": 1, "actual": 1}],
            "Optimistic Concurrency",
        ),
        (
            [OPEN, {"type": "snapshot_saved", "stream": "account-A", "version": 1, "state": 3}],
            "Snapshot Consistency",
        ),
        (
            [OPEN, {"type": "loaded", "stream": "account-A", "version": 2, "state": 0}],
            "Replay Equivalence",
        ),
        (
            [OPEN, {"type": "projected", "position": 1, "stream": "account-A", "view": 1}],
            "Projection Consistency",
        ),
        (
            [
                {
                    "type": "invoke",
                    "process": "c1",
                    "f": "append",
                    "key": "account-A",
                    "value": ["no-stream", ["e1"]],
                },
                OPEN,
                {
                    "type": "ok",
                    "process": "c1",
                    "f": "append",
                    "key": "account-A",
                    "value": [1, 1],
                    "positions": [1],
                },
                {"type": "recovered", "node": "n1", "position": 0},
            ],
            "Durability",
        ),
        (
            [
                {
                    "type": "invoke",
                    "process": "c1",
                    "f": "append",
                    "key": "account-A",
                    "value": ["no-stream", ["e9"]],
                },
                OPEN,
                {"type": "ok", "process": "c1", "f": "append", "key": "account-A", "value": [1, 1]},
            ],
            "Durability",
        ),
    ],
)
def test_offline_checker_finds(events, prop):
    result = check_history(events)
    assert result.violated and result.property == prop, result
    assert result.message


def test_recovery_truncates_unacknowledged_tail_and_final_check():
    m = Monitor()
    m.feed_all([OPEN, appended(2, "account-A", 2, "e2"), {"type": "recovered", "position": 1}])
    assert m.violation is None and m.last_position == 1
    assert check_final(m, [(1, "account-A", 1, "e1")], (1, {"account-A": 0})) is None
    bad = check_final(m, [(1, "account-A", 1, "e1"), (2, "account-A", 2, "e2")], None)
    assert bad is not None and bad.property == "Durability"
    stale = check_final(m, None, (0, {}))
    assert stale is not None and stale.property == "Projection Convergence"


# ---------------------------------------------------------------------------- Command Decisions
ACCOUNT_AT_5 = [OPEN, appended(2, "account-A", 2, "e2", expected="no-stream", batch=1)]
USER = [appended(3, "user-1", 1, "u1", "UserCreated", {"name": "ann"}, expected="no-stream")]


def command(type_, f, value, stream="account-A", **fields):
    return {"type": type_, "process": "c1:cmd", "f": f, "value": value, "stream": stream, **fields}


def loaded(version, state, stream="account-A"):
    return {"type": "loaded", "node": "c1", "stream": stream, "version": version, "state": state}


def decided(expected, *events, stream="account-A"):
    """c1's append invoke with the events (type, data) it decided."""
    ids = [f"x{i}" for i in range(len(events))]
    return {
        "type": "invoke",
        "process": "c1",
        "f": "append",
        "key": stream,
        "value": [expected, ids],
        "events": [{"event_id": i, "type": t, "data": d} for i, (t, d) in zip(ids, events)],
    }


def test_command_decisions_pass_on_what_the_specification_decides():
    events = [
        *ACCOUNT_AT_5,
        *USER,
        command("invoke", "withdraw", 3),
        loaded(2, 5),
        decided(2, ("Withdrawn", {"amount": 3})),
        command("info", "withdraw", 3),
        command("invoke", "withdraw", 9),
        loaded(2, 5),
        command("fail", "withdraw", 9, error="insufficient-funds"),
        command("invoke", "deposit", 1, stream="account-B"),
        loaded(0, None, stream="account-B"),
        decided(
            "no-stream",
            ("AccountOpened", {}),
            ("Deposited", {"amount": 1}),
            stream="account-B",
        ),
        command("fail", "deposit", 1, stream="account-B", error="event-id-reused"),
        command("invoke", "deactivate", None, stream="user-1"),
        loaded(1, ["ann", True], stream="user-1"),
        decided(1, ("UserDeactivated", {}), stream="user-1"),
        command("ok", "deactivate", [2, 2], stream="user-1"),
        # a command of a name the specification does not know is not judged
        command("invoke", "close", None),
        loaded(2, 5),
        command("fail", "close", None, error="unknown-command"),
    ]
    for n in range(len(events) + 1):
        assert check_history(events[:n]).ok, n


COMMAND_VIOLATIONS = {
    "withdraw beyond the balance": [
        command("invoke", "withdraw", 9),
        loaded(2, 5),
        decided(2, ("Withdrawn", {"amount": 9})),
    ],
    "withdraw refused with funds": [
        command("invoke", "withdraw", 3),
        loaded(2, 5),
        command("fail", "withdraw", 3, error="insufficient-funds"),
    ],
    "wrong amount": [
        command("invoke", "deposit", 3),
        loaded(2, 5),
        decided("any", ("Deposited", {"amount": 4})),
    ],
    "withdraw under no expected version": [
        command("invoke", "withdraw", 3),
        loaded(2, 5),
        decided("any", ("Withdrawn", {"amount": 3})),
    ],
    "deactivate as a rename": [
        command("invoke", "deactivate", None, stream="user-1"),
        loaded(1, ["ann", True], stream="user-1"),
        decided(1, ("UserUpdated", {"name": None}), stream="user-1"),
    ],
    "rename refused on an active user": [
        command("invoke", "rename", "bob", stream="user-1"),
        loaded(1, ["ann", True], stream="user-1"),
        command("fail", "rename", "bob", stream="user-1", error="unknown-command rename"),
    ],
}


@pytest.mark.parametrize("name", sorted(COMMAND_VIOLATIONS))
def test_command_decisions_violations(name):
    result = check_history([*ACCOUNT_AT_5, *USER, *COMMAND_VIOLATIONS[name]])
    assert result.violated and result.property == "Command Decisions", result
    assert "specification" in result.message


def test_a_decision_after_a_reload_is_judged_on_the_reload():
    """After a refusal the client reloads: the new decision is judged on the new state."""
    events = [
        *ACCOUNT_AT_5,
        command("invoke", "withdraw", 5),
        loaded(1, 0),  # a balance of 0 at version 1: the specification refuses
        decided(1, ("Withdrawn", {"amount": 5})),
    ]
    assert check_history(events).property == "Command Decisions"
    reload = [
        *ACCOUNT_AT_5,
        command("invoke", "withdraw", 5),
        loaded(1, 0),
        command("fail", "withdraw", 5, error="insufficient-funds"),
        command("invoke", "withdraw", 5),
        loaded(1, 0),
        {"type": "invoke", "process": "c1", "f": "read", "key": "account-A", "value": 2},
        loaded(2, 5),
        decided(2, ("Withdrawn", {"amount": 5})),
    ]
    assert check_history(reload).ok


# ---------------------------------------------------------------------------- the store's WAL
class FakeCtx:
    def __init__(self, storage):
        self.storage = storage
        self.events = []
        self.bug = None

    def record(self, kind, **fields):
        self.events.append((kind, fields))

    def sometimes(self, name, cond=True):
        return bool(cond)


def test_torn_tail_record_is_detected_and_dropped():
    storage = Storage()
    storage._set_manual(True)
    entries = [Recorded(p, "account-A", p, f"e{p}", "Deposited", (("amount", 1),)) for p in (1, 2)]
    for e in entries:
        payload = encode(e)
        storage.put(("wal", e.position), (checksum(payload), payload[: len(payload) // 2]))
        storage.put(("wal", e.position), (checksum(payload), payload))
    storage.sync()
    third = Recorded(3, "account-A", 3, "e3", "Deposited", (("amount", 1),))
    payload = encode(third)
    storage.put(("wal", 3), (checksum(payload), payload[: len(payload) // 2]))
    storage.put(("wal", 3), (checksum(payload), payload))
    storage._crash(keep=1)  # the crash kept the first half of record 3 only
    ctx = FakeCtx(storage)
    store = Store()
    store.on_restart(ctx)
    assert [e.event_id for e in store.log] == ["e1", "e2"]
    assert ctx.events == [("recovered", {"position": 2, "torn": 3})]
    assert storage.get(("wal", 3)) is None and ("wal", 3) not in storage.durable


def test_recovery_drops_an_append_the_crash_kept_only_part_of():
    """An append is atomic: a crash that kept the first record of a two-event batch whole (the
    second unsynced) leaves neither; found by Append Outcome, whose client was told its retry
    failed ("event-id-reused") while the first event was in the stream."""
    storage = Storage()
    storage._set_manual(True)
    opened = Recorded(1, "account-A", 1, "e1", "AccountOpened", ())
    deposited = Recorded(2, "account-A", 2, "e2", "Deposited", (("amount", 1),))
    for i, e in enumerate((opened, deposited)):
        payload = encode(e, i, 2)
        storage.put(("wal", e.position), (checksum(payload), payload[: len(payload) // 2]))
        storage.put(("wal", e.position), (checksum(payload), payload))
    storage._crash(keep=2)  # record 1 whole, nothing of record 2
    ctx = FakeCtx(storage)
    store = Store()
    store.on_restart(ctx)
    assert store.log == [] and store.ids == {}
    assert ctx.events == [("recovered", {"position": 0, "torn": None})]
    assert storage.get(("wal", 1)) is None and ("wal", 1) not in storage.durable
    # the whole batch synced survives a crash
    for i, e in enumerate((opened, deposited)):
        payload = encode(e, i, 2)
        storage.put(("wal", e.position), (checksum(payload), payload))
    storage.sync()
    storage._crash(keep=0)
    again = Store()
    again.on_restart(FakeCtx(storage))
    assert [e.event_id for e in again.log] == ["e1", "e2"]


# ---------------------------------------------------------------------------- stream model
def test_stream_model_steps():
    s = STREAM.init()
    ok, s = STREAM.step(s, Call("append", ("no-stream", ("a",)), "x"), (1, 1))
    assert ok and s == ("a",)
    assert not STREAM.step(s, Call("append", (0, ("b",)), "x"), (1, 1))[0]
    ok, s2 = STREAM.step(s, Call("append", (1, ("b", "c")), "x"), (2, 3))
    assert ok and s2 == ("a", "b", "c")
    ok, same = STREAM.step(s2, Call("append", (0, ("b", "c")), "x"), (2, 3))  # a retry
    assert ok and same == s2
    assert STREAM.step(s2, Call("read", 2, "x"), (2, ("b", "c")))[0]
    assert not STREAM.step(s2, Call("read", 2, "x"), (2, ("b",)))[0]
    ok, unchanged = STREAM.step(s2, Call("append", (0, ("d",)), "x"), UNKNOWN)
    assert ok and unchanged == s2


def test_stream_linearizability_on_recorded_histories():
    from treadle.checkers.linearizability import check_history as linearizable

    assert linearizable(_history(seed=11).history, "stream", timeout=10).ok
    for seed in range(40):
        r = _history("non-atomic-version-check", seed=seed, checks=False)
        if linearizable(r.history, "stream", timeout=10).violated:
            return
    pytest.fail("the stream model never saw the lost update")


def test_a_retry_answered_as_failed_is_found(monkeypatch, tmp_path):
    """The harness weakness a mutant of ``Store.on_retry`` showed: a retried append whose events
    are stored, answered with an error. No other check sees it; Append Outcome does."""
    from treadle.impl.eventstore.messages import AppendReply

    def refuse_retry(self, ctx, src, m, ids):
        self.reply(ctx, src, AppendReply(m.req, False, error="event-id-reused"))

    monkeypatch.setattr(Store, "on_retry", refuse_retry)
    r = explore(system, strategy="random", seed=0, runs=200, out=str(tmp_path), shrink_runs=0)
    assert r.verdict == "violation" and r.violation.property == "Append Outcome", r.summary()


def test_a_stale_read_is_found_by_linearizability(monkeypatch, tmp_path):
    """Reads that miss the stream's newest event: every state a client loads is a true prefix of
    its stream, so only the stream model, judging the reads the clients saw, sees it."""
    answer = Store.on_read

    def stale_read(self, ctx, src, m):
        positions = self.streams.get(m.stream)
        if positions and len(positions) >= 2:
            saved, self.streams[m.stream] = positions, positions[:-1]
            try:
                answer(self, ctx, src, m)
            finally:
                self.streams[m.stream] = saved
        else:
            answer(self, ctx, src, m)

    monkeypatch.setattr(Store, "on_read", stale_read)
    r = explore(system, strategy="random", seed=0, runs=100, out=str(tmp_path), shrink_runs=0)
    assert r.verdict == "violation" and r.violation.property == "linearizability", r.summary()


def test_a_wrong_decision_is_found(monkeypatch, tmp_path):
    """A decide step that refuses a withdrawal of the whole balance: the log stays valid (no
    balance goes negative), only Command Decisions sees the refusal."""
    from treadle.impl.eventstore import aggregates

    decide = aggregates.decide

    def strict(stream, state, version, command, args):
        if command == "withdraw" and state is not None and state == args:
            return "insufficient-funds"
        return decide(stream, state, version, command, args)

    monkeypatch.setattr(aggregates, "decide", strict)
    r = explore(system, strategy="random", seed=0, runs=200, out=str(tmp_path), shrink_runs=0)
    assert r.verdict == "violation" and r.violation.property == "Command Decisions", r.summary()


@pytest.mark.parametrize(
    "event",
    [
        appended(2, "account-A", 2, "e2", data={"amount": None}),
        appended(2, "account-A", "2", "e2"),
        {**appended(2, "account-A", 2, "e2"), "data": [5]},
        {**op("ok", {"first": 2}), "positions": [2]},
        {**op("ok", [2, 2]), "positions": "2"},
    ],
    ids=["amount null", "version a string", "data a list", "ok value a dict", "positions"],
)
def test_an_event_the_checks_cannot_read_is_refused_naming_it(event, tmp_path):
    """Not a TypeError from deep inside (a harness error in an exploration): a MalformedEvent
    naming the event, which ``treadle check`` reports at the file's line with exit 2."""
    from treadle.errors import MalformedEvent

    events = [OPEN, op("invoke", ["any", ["e2"]]), event]
    with pytest.raises(MalformedEvent) as refused:
        check_history(events)
    assert refused.value.position == 2
    path = tmp_path / "bad.jsonl"
    write_jsonl(str(path), events)
    cli = subprocess.run(
        [sys.executable, "-m", "treadle.cli", "check", str(path), "--model", "eventstore"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert cli.stderr.strip().count("\n") == 0 and f"{path}:3" in cli.stderr, cli.stderr


def test_a_store_recording_an_unreadable_event_is_a_counterexample(monkeypatch, tmp_path):
    """An exploration whose nodes record an event the checks cannot read gets a saved
    "well-formed history" violation, not a harness error (two mutants of decide recorded a
    Deposited without an amount, and the monitor raised TypeError)."""
    from treadle.impl.eventstore.messages import NewEvent

    write = Store.write

    def no_amount(self, ctx, src, m, first_version):
        events = tuple(NewEvent(e.event_id, e.type, (("amount", None),)) for e in m.events)
        if any(e.type == "Deposited" for e in m.events):
            m = dataclasses.replace(m, events=events)
        write(self, ctx, src, m, first_version)

    monkeypatch.setattr(Store, "write", no_amount)
    r = explore(system, strategy="random", seed=0, runs=20, out=str(tmp_path), shrink_runs=0)
    assert r.verdict == "violation" and r.violation.property == "well-formed history", r.summary()


# ---------------------------------------------------------------------------- the quiet tail
def test_the_quiet_tail_runs_every_clients_commands_and_judges_them():
    r = _history(seed=2)
    assert r.violation is None
    w = r.world
    tail = [e for e in w.history if e.get("time", 0) > w.settled_at]
    done = [e for e in tail if e.get("process", "").endswith(":cmd") and e["type"] != "invoke"]
    assert {e["process"] for e in done} == {"c1:cmd", "c2:cmd", "c3:cmd"}
    assert all(n.command is None and n.ops_left == 0 for n in map(w.nodes.get, w.client_ids))


def test_a_store_that_never_answers_reads_makes_no_progress(monkeypatch, tmp_path):
    """Every command fails "unavailable": no safety property breaks (nothing is appended at
    all), so only the progress check sees it."""
    monkeypatch.setattr(Store, "on_read", lambda self, ctx, src, m: None)
    r = explore(system, strategy="random", seed=0, runs=20, out=str(tmp_path), shrink_runs=0)
    assert r.verdict == "violation", r.summary()
    assert r.violation.property == "Progress after faults stop"
    assert "given up on" in r.violation.message


def test_a_client_that_stops_working_makes_no_progress(monkeypatch, tmp_path):
    """A client that never starts another command after its first: its tail command is never
    run."""
    from treadle.impl.eventstore.client import Client

    pause = Client.pause

    def once(self, ctx):
        if self.command is None and self.req == 0:
            pause(self, ctx)

    monkeypatch.setattr(Client, "pause", once)
    r = explore(system, strategy="random", seed=0, runs=20, out=str(tmp_path), shrink_runs=0)
    assert r.verdict == "violation", r.summary()
    assert r.violation.property == "Progress after faults stop"
    assert "never started" in r.violation.message


def _req(type_, time, process="c1", f="read"):
    return {"type": type_, "process": process, "f": f, "key": "account-A", "time": time}


@pytest.mark.parametrize(
    "history, work, verdict",
    [
        ([_req("invoke", 101), _req("ok", 105)], {}, None),
        # sent before the faults stopped: it may have been lost, a late answer is fine
        ([_req("invoke", 90), _req("ok", 160)], {}, None),
        ([_req("invoke", 101), _req("info", 161)], {}, "given up on"),
        ([_req("invoke", 101), _req("fail", 122, f="append")], {}, "answered after 21"),
        ([], {"c1": ("withdraw", "account-A", 0)}, "still open"),
        ([], {"c1": (None, None, 2)}, "never started"),
        ([], {"c1": (None, None, 0)}, None),
    ],
)
def test_progress_check_on_hand_written_tails(history, work, verdict):
    from treadle.checkers.eventstore.progress import check_progress

    r = check_progress(history, 100, 400, 20, work, 300)
    if verdict is None:
        assert r is None
    else:
        assert r is not None and r.property == "Progress after faults stop" and verdict in r.message


def test_a_client_timeout_below_the_round_trip_is_not_judged_per_request(tmp_path):
    """With a timeout shorter than a fault-free round trip a correct client resends in the
    tail too: then only "every command finishes" is judged, never a false alarm."""
    from treadle.checkers.eventstore.progress import round_trip

    cfg = {"client_timeout": 4}
    assert round_trip(system.resolve_config(cfg)) > 4
    r = explore(system, strategy="random", seed=0, runs=60, config=cfg, out=str(tmp_path))
    assert r.verdict == "ok", r.summary()
