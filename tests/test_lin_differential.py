"""Differential tests aimed at the search's prunings (greedy identity steps, skipped no-op
unknown ops, interchangeable unknown ops, the kv lookahead).

The histories are built to stress exactly what those prunings assume: a tiny value domain so
that writes repeat equal values and cas are often no-ops (``cas [v, v]``) or fail their compare,
many ``info``/pending operations, and, for kv, puts of non-string values beside appends. About
half of them are mutated into likely violations (stale or invented reads, an ok cas whose
compare fails, an ok write turned into a failed one, a completion moved earlier), so that both verdicts are well represented. The
brute-force oracle of ``test_lin_oracle`` decides; the checker must agree.

Found with it: the kv lookahead treated a key holding a non-string (``put 5``) as unable to
satisfy ``get -> 5`` (``reachable`` assumed every state was a string).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_lin_oracle import brute_force
from treadle.checkers.linearizability import check_history
from treadle.models.model import UNKNOWN, Call, hashable

from treadle import models

SETTINGS = dict(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _input(draw: Any, model_name: str) -> dict:
    if model_name == "cas-register":
        f = draw(st.sampled_from(["read", "read", "write", "write", "cas", "cas"]))
        if f == "read":
            return {"f": f}
        if f == "write":
            return {"f": f, "value": draw(st.sampled_from([0, 0, 1]))}
        a = draw(st.sampled_from([None, 0, 1]))
        b = a if draw(st.booleans()) else draw(st.sampled_from([0, 1]))  # often a no-op
        return {"f": f, "value": [a, b]}
    f = draw(st.sampled_from(["get", "get", "put", "append", "append", "cas"]))
    key = draw(st.sampled_from(["x", "x", "y"]))
    if f == "get":
        return {"f": f, "key": key, "value": None}
    if f == "put":
        return {"f": f, "key": key, "value": draw(st.sampled_from(["", "a", "a", 5]))}
    if f == "append":
        return {"f": f, "key": key, "value": draw(st.sampled_from(["a", "a", "b", ""]))}
    a = draw(st.sampled_from([None, "a", "ab", 5]))
    b = a if draw(st.booleans()) else draw(st.sampled_from(["a", "b", 5]))
    return {"f": "cas", "key": key, "value": [a, b]}


def _output(model_name: str, state: Any, inp: Call) -> Any:
    if inp.f in ("read", "get"):
        return state
    if inp.f == "cas":
        old = inp.value[0]
        if model_name == "kv" and old is None:
            old = ""
        return inp.value if state == old else None
    return inp.value


@st.composite
def stressing(draw: Any, model_name: str, max_ops: int = 7) -> list[dict]:
    model = models.REGISTRY[model_name]
    n = draw(st.integers(3, max_ops))
    nproc = draw(st.integers(2, 4))
    cursor = [0] * nproc
    plan = []
    for i in range(n):
        alive = [p for p in range(nproc) if cursor[p] is not None]
        if not alive:
            break
        p = draw(st.sampled_from(alive))
        start = cursor[p] + draw(st.integers(0, 3))
        lin = start + draw(st.integers(1, 4))
        end = lin + draw(st.integers(1, 4))
        kind = draw(st.sampled_from(["ok", "ok", "ok", "ok", "info", "info-none", "pending"]))
        plan.append(
            {
                "p": p,
                "start": start * 8 + i % 8,
                "lin": lin * 8 + i % 8,
                "end": end * 8 + i % 8,
                "kind": kind,
                "input": _input(draw, model_name),
            }
        )
        cursor[p] = None if kind != "ok" else end + 1
    states: dict[Any, Any] = {}
    written: list[Any] = [None]
    for op in sorted(plan, key=lambda o: o["lin"]):
        if op["kind"] == "info-none":
            continue
        d = op["input"]
        inp = Call(d["f"], hashable(d.get("value")), d.get("key"))
        s = states.get(inp.key, model.init())
        out = _output(model_name, s, inp)
        legal, s2 = model.step(s, inp, out if op["kind"] == "ok" else UNKNOWN)
        if (inp.f == "cas" and out is None) or not legal:
            # the compare fails (or an append to a non-string): no effect
            op["kind"] = "fail" if op["kind"] == "ok" else op["kind"]
            op["out"] = None
            continue
        states[inp.key] = s2
        if s2 not in written:
            written.append(s2)
        op["out"] = out
    events = []
    for op in plan:
        base = {"process": op["p"], "f": op["input"]["f"]}
        if "key" in op["input"]:
            base["key"] = op["input"]["key"]
        events.append((op["start"], {**base, "type": "invoke", "value": op["input"].get("value")}))
        if op["kind"] == "pending":
            continue
        t = {"ok": "ok", "fail": "fail"}.get(op["kind"], "info")
        events.append(
            (op["end"], {**base, "type": t, "value": op.get("out") if t == "ok" else None})
        )
    events.sort(key=lambda e: e[0])
    out = [dict(e) for _, e in events]
    for _ in range(draw(st.sampled_from([2, 1, 3, 0, 2, 3]))):
        _mutate(draw, out, model_name, written)
    return [dict(e, index=i, time=i) for i, e in enumerate(out)]


def _mutate(draw: Any, events: list[dict], model_name: str, written: list[Any]) -> None:
    """Apply one mutation that is likely to break linearizability (the first that applies)."""
    oks = [i for i, e in enumerate(events) if e["type"] == "ok"]
    reads = [i for i in oks if events[i]["f"] in ("read", "get")]
    fails = [i for i, e in enumerate(events) if e["type"] == "fail" and e["f"] == "cas"]
    writes = [i for i in oks if events[i]["f"] in ("write", "put", "append", "cas")]
    kinds = draw(st.permutations(["read", "stale", "cas", "early", "unwrite"]))
    for how in kinds:
        if how in ("read", "stale") and reads:
            i = draw(st.sampled_from(reads))
            if how == "stale":
                pool = written
            elif model_name == "cas-register":
                pool = [None, 0, 1, 2]
            else:
                pool = ["", "a", "ab", "b", 5]
            pool = [v for v in pool if v != events[i]["value"]]
            if pool:
                events[i]["value"] = draw(st.sampled_from(pool))
                return
        elif how == "cas" and fails:  # claim that a cas whose compare failed succeeded
            events[draw(st.sampled_from(fails))]["type"] = "ok"
            return
        elif how == "unwrite" and writes:  # a write that took effect claims it did not
            events[draw(st.sampled_from(writes))]["type"] = "fail"
            return
        elif how == "early" and oks:  # a completion moved to right after its invocation
            i = draw(st.sampled_from(oks))
            e = events[i]
            j = max(k for k in range(i) if events[k]["process"] == e["process"])
            if j + 1 < i:
                events.insert(j + 1, events.pop(i))
                return


def _agree(events: list[dict], model_name: str) -> bool:
    want = brute_force(events, model_name)
    got = check_history(events, model_name).verdict
    assert got == ("ok" if want else "violation"), f"checker={got} oracle={want}\n{events}"
    return want


@pytest.mark.parametrize("model_name", ["cas-register", "kv"])
@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_prunings_against_brute_force(model_name: str, data: Any) -> None:
    _agree(data.draw(stressing(model_name)), model_name)


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["cas-register", "kv"])
@settings(max_examples=5_000, **SETTINGS)
@given(data=st.data())
def test_prunings_against_brute_force_5k(model_name: str, data: Any) -> None:
    _agree(data.draw(stressing(model_name)), model_name)


def test_generator_mixes_verdicts() -> None:
    # the point of this generator: both verdicts well represented (not ~10% violations)
    verdicts = []

    @settings(max_examples=120, database=None, derandomize=True, **SETTINGS)
    @given(data=st.data())
    def run(data: Any) -> None:
        verdicts.append(_agree(data.draw(stressing("cas-register")), "cas-register"))

    run()
    share = verdicts.count(False) / len(verdicts)
    assert 0.2 <= share <= 0.8, share


def test_kv_non_string_value_is_reachable() -> None:
    ev = [
        {"process": 0, "type": "invoke", "f": "put", "key": "k", "value": "a"},
        {"process": 0, "type": "ok", "f": "put", "key": "k", "value": "a"},
        {"process": 0, "type": "invoke", "f": "put", "key": "k", "value": 5},
        {"process": 0, "type": "ok", "f": "put", "key": "k", "value": 5},
        {"process": 1, "type": "invoke", "f": "get", "key": "k", "value": None},
        {"process": 1, "type": "ok", "f": "get", "key": "k", "value": 5},
    ]
    assert check_history(ev, "kv").verdict == "ok"
    ev[-1] = dict(ev[-1], value="a5")
    assert check_history(ev, "kv").verdict == "violation"


VALUES_KV = st.one_of(st.text("ab", max_size=4), st.none(), st.sampled_from([5, 7]))


@settings(max_examples=300, **SETTINGS)
@given(
    outs=st.lists(VALUES_KV, min_size=0, max_size=8),
    states=st.lists(st.one_of(st.text("ab", max_size=4), st.sampled_from([5, 7])), max_size=6),
)
def test_kv_unreachable_index_matches_reachable(outs: list[Any], states: list[Any]) -> None:
    # the indexed lookahead (gets sorted by output) must say exactly what reachable() says
    from treadle.models import kv

    obs: dict[tuple[Call, Any], int] = {}
    for g, out in enumerate(outs):
        k = (Call("get", None, "x"), out)
        obs[k] = obs.get(k, 0) | 1 << g
    observers = list(obs.items())
    index = kv.unreachable_index(observers)
    for s in states:
        want = 0
        for (inp, out), mask in observers:
            if not kv.reachable(s, inp, out):
                want |= mask
        assert index(s) == want, (s, observers)
