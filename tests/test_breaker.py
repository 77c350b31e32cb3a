"""The breaker specification, its conformance checker, the mesh's implementation and the z3
bounded model checking: cross-checked against each other."""

from __future__ import annotations

import json
import random

import pytest
from treadle.checkers.breaker import PROPERTY, check_history, proofs
from treadle.impl.mesh.breaker import Breaker
from treadle.models import breaker as spec

CFG = spec.BreakerConfig(
    failure_threshold=3,
    window_size=5,
    failure_rate=60,
    min_calls=5,
    reset_timeout=10,
    half_open_max=2,
    success_threshold=2,
)


def feed(cfg, inputs):
    s = spec.init()
    out = []
    for inp in inputs:
        d, s = spec.step(cfg, s, inp)
        out.append((d, s))
    return out


# ------------------------------------------------------------------ the specification
def test_consecutive_failures_open_and_success_resets():
    cfg = spec.BreakerConfig(failure_threshold=3, window_size=0)
    s = spec.init()
    for t in range(2):
        _, s = spec.step(cfg, s, spec.Input(t, spec.REQUEST))
        _, s = spec.step(cfg, s, spec.Input(t, spec.FAILURE, 0))
    _, s = spec.step(cfg, s, spec.Input(3, spec.SUCCESS, 0))
    assert s.mode == spec.CLOSED and s.failures == 0
    for t in (4, 5):
        _, s = spec.step(cfg, s, spec.Input(t, spec.FAILURE, 0))
    assert s.mode == spec.CLOSED
    _, s = spec.step(cfg, s, spec.Input(6, spec.FAILURE, 0))
    assert s.mode == spec.OPEN and s.opened_at == 6


def test_window_failure_rate_opens():
    cfg = spec.BreakerConfig(failure_threshold=0, window_size=4, failure_rate=50, min_calls=4)
    s = spec.init()
    for t, ev in enumerate([spec.FAILURE, spec.SUCCESS, spec.FAILURE]):
        _, s = spec.step(cfg, s, spec.Input(t, ev, 0))
    assert s.mode == spec.CLOSED  # 2 of 3, but fewer than min_calls outcomes
    _, s = spec.step(cfg, s, spec.Input(5, spec.SUCCESS, 0))
    assert s.mode == spec.OPEN  # 2 of 4 = 50%


def test_open_half_open_close_and_reopen():
    s = spec.BreakerState(mode=spec.OPEN, gen=1, opened_at=10, since=10)
    d, s2 = spec.step(CFG, s, spec.Input(19, spec.REQUEST))
    assert d == spec.REJECT and s2 == s
    d, s = spec.step(CFG, s, spec.Input(20, spec.REQUEST))
    assert d == spec.ADMIT and s.mode == spec.HALF_OPEN and s.trials == 1
    gen = s.gen
    d, s = spec.step(CFG, s, spec.Input(20, spec.REQUEST))
    assert d == spec.ADMIT and s.trials == 2
    d, s = spec.step(CFG, s, spec.Input(21, spec.REQUEST))
    assert d == spec.REJECT
    _, s = spec.step(CFG, s, spec.Input(22, spec.SUCCESS, gen))
    assert s.mode == spec.HALF_OPEN
    _, closed = spec.step(CFG, s, spec.Input(23, spec.SUCCESS, gen))
    assert closed.mode == spec.CLOSED
    _, reopened = spec.step(CFG, s, spec.Input(23, spec.FAILURE, gen))
    assert reopened.mode == spec.OPEN and reopened.opened_at == 23


def test_stale_outcomes_are_ignored():
    s = spec.BreakerState(mode=spec.HALF_OPEN, gen=2, trials=1, since=5)
    _, s2 = spec.step(CFG, s, spec.Input(6, spec.FAILURE, 1))
    assert s2 == s


def test_config_problems_are_reported():
    assert spec.BreakerConfig(half_open_max=1, success_threshold=2).problems()
    assert not CFG.problems()


# ------------------------------------------------------------------ random cross-checks
def random_inputs(rng, n, horizon=3):
    """Requests and outcomes of admitted calls (stale ones included), times non-decreasing.
    Returns (time, event, call index or None)."""
    out, t, pending = [], 0, []
    calls = 0
    for _ in range(n):
        t += rng.randrange(horizon + 1) * rng.randrange(2) * 4
        if pending and rng.random() < 0.55:
            c = pending.pop(rng.randrange(len(pending)))
            out.append((t, rng.choice([spec.SUCCESS, spec.FAILURE]), c))
        else:
            out.append((t, spec.REQUEST, calls))
            pending.append(calls)
            calls += 1
    return out


def run_spec(cfg, seq):
    s, gens, res = spec.init(), {}, []
    for t, ev, c in seq:
        if ev == spec.REQUEST:
            d, s = spec.step(cfg, s, spec.Input(t, ev))
            if d == spec.ADMIT:
                gens[c] = s.gen
            res.append((d, s.mode))
        elif c in gens:
            _, s = spec.step(cfg, s, spec.Input(t, ev, gens.pop(c)))
            res.append((None, s.mode))
    return res


def run_impl(cfg, bug, seq):
    b, gens, res = Breaker(cfg.to_json(), bug), {}, []
    for t, ev, c in seq:
        if ev == spec.REQUEST:
            admit, _ = b.allow(t)
            if admit:
                gens[c] = b.gen
            res.append(("admit" if admit else "reject", b.mode))
        elif c in gens:
            b.record(t, gens.pop(c), ev == spec.FAILURE)
            res.append((None, b.mode))
    return res


def test_mesh_breaker_agrees_with_the_specification():
    rng = random.Random(7)
    for _ in range(300):
        seq = random_inputs(rng, 40)
        assert run_impl(CFG, None, seq) == run_spec(CFG, seq)


def test_z3_encoding_agrees_with_the_specification_and_the_variants():
    """The symbolic step function, evaluated on concrete inputs, matches the Python spec (no
    bug) and the mesh's breaker (each seeded variant); stale outcomes are left out, as the
    encoding leaves them out."""
    cfg = proofs.PROOF_CONFIG
    rng = random.Random(3)
    for trial in range(24):
        seq = random_inputs(rng, 18)
        for bug in (None, *proofs.VARIANTS):
            b, gens, concrete, expected = Breaker(cfg.to_json(), bug), {}, [], []
            for t, ev, c in seq:
                if ev == spec.REQUEST:
                    admit, _ = b.allow(t)
                    if admit:
                        gens[c] = b.gen
                    concrete.append((t, ev))
                    expected.append(("admit" if admit else "reject", b.mode))
                elif gens.get(c) == b.gen:
                    gens.pop(c)
                    b.record(t, b.gen, ev == spec.FAILURE)
                    concrete.append((t, ev))
                    expected.append((None, b.mode))
            assert proofs.concrete_run(cfg, bug, concrete) == expected, (trial, bug)
        if trial % 6 == 0:
            assert run_impl(cfg, None, seq) == run_spec(cfg, seq)


# ------------------------------------------------------------------ conformance checker
def history_from(cfg, bug, seq, upstream="svc-b", transitions=False):
    """Record a history the way a real proxy would, from the mesh's breaker (with
    ``transitions``, also its breaker-state events, just before the event that causes each)."""
    b, gens, events = Breaker(cfg.to_json(), bug), {}, []
    events.append({"type": "breaker-config", "time": 0, "upstream": upstream, **cfg.to_json()})

    def moved(change):
        if transitions and change is not None:
            events.append({"type": "breaker-state", "upstream": upstream, "from": change[0],
                           "to": change[1]})  # fmt: skip

    for t, ev, c in seq:
        if ev == spec.REQUEST:
            admit, change = b.allow(t)
            moved(change)
            if admit:
                gens[c] = b.gen
            decision = "admit" if admit else "reject"
            events.append(
                {"type": "breaker-call", "time": t, "upstream": upstream, "call": f"c{c}",
                 "decision": decision, "state": b.mode}
            )  # fmt: skip
        elif c in gens:
            moved(b.record(t, gens.pop(c), ev == spec.FAILURE))
            events.append(
                {"type": "breaker-outcome", "time": t, "upstream": upstream, "call": f"c{c}",
                 "outcome": ev, "state": b.mode}
            )  # fmt: skip
    return events


def test_correct_histories_conform():
    rng = random.Random(11)
    for _ in range(100):
        r = check_history(history_from(CFG, None, random_inputs(rng, 50)))
        assert r.verdict == "ok", r.message


def test_recorded_transitions_must_be_the_specifications():
    """Once a breaker records its transitions it records each one, and only those: every
    correct history with them conforms; dropping any transition after the first, or adding
    one where nothing moved, is a divergence."""
    rng = random.Random(13)
    dropped = spurious = 0
    for _ in range(100):
        events = history_from(CFG, None, random_inputs(rng, 50), transitions=True)
        assert check_history(events).verdict == "ok"
        states = [i for i, e in enumerate(events) if e["type"] == "breaker-state"]
        for i in states[1:]:
            r = check_history(events[:i] + events[i + 1 :])
            assert r.violated and r.property == PROPERTY and "it recorded was none" in r.message
            dropped += 1
        calls = [i for i, e in enumerate(events) if e["type"] == "breaker-call"]
        for i in calls[:3]:
            if events[i - 1]["type"] == "breaker-state":
                continue
            fake = {"type": "breaker-state", "upstream": "svc-b", "from": "closed", "to": "open"}
            r = check_history([*events[:i], fake, *events[i:]])
            assert r.violated and r.property == PROPERTY
            spurious += 1
    assert dropped > 50 and spurious > 50


@pytest.mark.parametrize(
    "bug,words",
    [
        ("unlimited-half-open", "trial call while HalfOpen"),
        ("open-forever", "stays Open forever"),
        ("seed-breaker", "the specification says"),
    ],
)
def test_seeded_variants_diverge_with_an_explanation(bug, words):
    rng = random.Random(5)
    found = 0
    for _ in range(300):
        r = check_history(history_from(CFG, bug, random_inputs(rng, 60)))
        if r.violated:
            assert r.property == PROPERTY
            assert r.message.startswith("at t=") and "the breaker for svc-b" in r.message
            found += words in r.message
    assert found > 0


def test_admit_while_open_message():
    events = [
        {"type": "breaker-config", "upstream": "svc-b", "failure_threshold": 1,
         "reset_timeout": 30},
        {"type": "breaker-call", "time": 38, "upstream": "svc-b", "call": "1", "decision": "admit"},
        {"type": "breaker-outcome", "time": 40, "upstream": "svc-b", "call": "1",
         "outcome": "failure", "state": "open"},
        {"type": "breaker-call", "time": 57, "upstream": "svc-b", "call": "2", "decision": "admit"},
    ]  # fmt: skip
    r = check_history(events)
    assert r.violated
    assert r.message.startswith(
        "at t=57 the breaker for svc-b admitted a call while Open (opened at t=40"
    )
    assert "reset timeout 30" in r.message


def test_outcome_of_unknown_call_and_empty_history():
    ev = {"type": "breaker-outcome", "time": 1, "upstream": "x", "call": "9", "outcome": "success"}
    assert check_history([ev]).violated
    assert check_history([{"type": "invoke", "process": "p", "f": "read"}]).verdict == "unknown"


def test_offline_cli_on_a_jsonl_file(tmp_path):
    from treadle.cli import main

    rng = random.Random(2)
    good = tmp_path / "good.jsonl"
    good.write_text(
        "".join(json.dumps(e) + "\n" for e in history_from(CFG, None, random_inputs(rng, 80)))
    )
    assert main(["check", "--model", "breaker", str(good)]) == 0
    bad = tmp_path / "bad.jsonl"
    events = []
    rng = random.Random(5)
    while not check_history(events).violated:
        events = history_from(CFG, "unlimited-half-open", random_inputs(rng, 60))
    bad.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["check", "--model", "breaker", str(bad)]) == 1


# ------------------------------------------------------------------ z3 bounded model checking
def test_bmc_specification_holds(capsys):
    assert proofs.run(["--k", "9"]) == 0
    assert "hold for every input sequence of length <= 9" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bug,prop",
    [
        # seed-breaker breaks three properties at once: any of them is a right answer
        ("seed-breaker", ("Opens Only On Failures", "Closes Only After S Successes",
                          "HalfOpen Trial Limit")),
        ("unlimited-half-open", ("HalfOpen Trial Limit",)),
        ("open-forever", ("Trial After Reset Timeout",)),
    ],
)  # fmt: skip
def test_bmc_finds_each_seeded_variant(bug, prop, capsys):
    assert proofs.run(["--k", "9", "--bug", bug]) == 1
    out = capsys.readouterr().out
    assert any(f"counterexample to {p}" in out for p in prop)
    assert "request" in out and "-> admit" in out


def test_bmc_counterexample_replays_on_the_mesh_breaker():
    """The symbolic counterexample is a real input sequence: fed to the mesh's breaker it makes
    the same decisions, and the conformance checker rejects it too."""
    cfg = proofs.PROOF_CONFIG
    for bug in proofs.VARIANTS:
        r = proofs.bmc(cfg, bug, 9)
        assert not r.holds and r.counterexample is not None
        b, events, open_calls, n = Breaker(cfg.to_json(), bug), [], [], 0
        events.append({"type": "breaker-config", "upstream": "u", **cfg.to_json()})
        for st in r.counterexample.steps:
            if st["event"] == "request":
                admit, _ = b.allow(st["time"])
                assert ("admit" if admit else "reject") == st["decision"]
                n += 1
                if admit:
                    open_calls.append((f"c{n}", b.gen))
                events.append({"type": "breaker-call", "time": st["time"], "upstream": "u",
                               "call": f"c{n}", "decision": st["decision"], "state": b.mode})  # fmt: skip
            else:
                call, gen = next(c for c in open_calls if c[1] == b.gen)
                open_calls.remove((call, gen))
                b.record(st["time"], gen, st["event"] == "failure")
                events.append({"type": "breaker-outcome", "time": st["time"], "upstream": "u",
                               "call": call, "outcome": st["event"], "state": b.mode})  # fmt: skip
            assert b.mode == st["after"]
        assert check_history(events).violated, bug


def test_bmc_rejects_bad_configuration(capsys):
    assert proofs.run(["--half-open", "1", "--successes", "2"]) == 2
