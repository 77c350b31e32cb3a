"""Differential tests: the checker against two independent oracles.

* brute force: every order of every subset (completed ops always in, unknown-outcome ops
  optional) that respects real time, replayed through the model's step function;
* z3: a total order as slot assignment (``sel[k]`` = the op in slot k, or none), real-time
  precedence on positions, and the cas-register's state threaded through the slots.

Hypothesis builds histories that are linearizable by construction (each op takes effect at a
random point inside its interval) and mutated ones (a read's result changed); all three
verdicts must agree.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from treadle.checkers.linearizability import check_history
from treadle.models.model import UNKNOWN, Call, hashable

from treadle import models

# ---- an independent reading of the history -------------------------------------------------


def simple_ops(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """[{call, ret (None: unknown outcome), input, output}] without failed ops."""
    open_: dict[Any, tuple[int, dict]] = {}
    out = []
    for pos, e in enumerate(events):
        if e["type"] == "invoke":
            open_[e["process"]] = (pos, e)
        elif e["type"] in ("ok", "fail", "info"):
            cpos, ce = open_.pop(e["process"])
            if e["type"] == "fail":
                continue
            out.append(
                {
                    "call": cpos,
                    "ret": pos if e["type"] == "ok" else None,
                    "input": Call(ce["f"], hashable(ce.get("value")), ce.get("key")),
                    "output": hashable(e.get("value")) if e["type"] == "ok" else UNKNOWN,
                }
            )
    for cpos, ce in open_.values():
        out.append(
            {
                "call": cpos,
                "ret": None,
                "input": Call(ce["f"], hashable(ce.get("value")), ce.get("key")),
                "output": UNKNOWN,
            }
        )
    return out


def brute_force(events: list[dict[str, Any]], model_name: str) -> bool:
    model = models.REGISTRY[model_name]
    ops = simple_ops(events)
    groups: dict[Any, list] = {}
    for o in ops:
        groups.setdefault(o["input"].key if model.partition else None, []).append(o)
    return all(_brute_one(g, model) for g in groups.values())


def _brute_one(ops: list[dict], model: Any) -> bool:
    done = [o for o in ops if o["ret"] is not None]
    unknown = [o for o in ops if o["ret"] is None]
    for r in range(len(unknown) + 1):
        for extra in itertools.combinations(unknown, r):
            chosen = done + list(extra)
            for perm in itertools.permutations(chosen):
                ok = True
                for i, a in enumerate(perm):
                    # a placed before b although b returned before a was invoked: not allowed
                    if any(b["ret"] is not None and b["ret"] < a["call"] for b in perm[i + 1 :]):
                        ok = False
                        break
                if not ok:
                    continue
                s = model.init()
                for o in perm:
                    legal, s = model.step(s, o["input"], o["output"])
                    if not legal:
                        ok = False
                        break
                if ok:
                    return True
    return False


NIL = -1


def _z(v: Any) -> int:
    return NIL if v is None else int(v)


def z3_cas_register(events: list[dict[str, Any]]) -> bool:
    """Linearizability of a cas-register history (small ints, nil) by a z3 encoding."""
    ops = simple_ops(events)
    n = len(ops)
    if n == 0:
        return True
    s = z3.Solver()
    sel = [z3.Int(f"sel{k}") for k in range(n)]  # op in slot k; n = empty slot
    pos = [z3.Int(f"pos{i}") for i in range(n)]
    inc = [z3.Bool(f"inc{i}") for i in range(n)]
    state = [z3.Int(f"s{k}") for k in range(n + 1)]
    s.add(state[0] == NIL)
    for k in range(n):
        s.add(sel[k] >= 0, sel[k] <= n)
        if k + 1 < n:  # empty slots only at the end
            s.add(z3.Implies(sel[k] == n, sel[k + 1] == n))
    for i, o in enumerate(ops):
        s.add(inc[i] == z3.Or([sel[k] == i for k in range(n)]))
        for k in range(n):
            s.add(z3.Implies(sel[k] == i, pos[i] == k))
        s.add(z3.AtMost(*[sel[k] == i for k in range(n)], 1))
        if o["ret"] is not None:
            s.add(inc[i])
    for i, a in enumerate(ops):
        for j, b in enumerate(ops):
            if a["ret"] is not None and a["ret"] < b["call"]:
                s.add(z3.Implies(inc[j], pos[i] < pos[j]))
    for k in range(n):
        cur, nxt = state[k], state[k + 1]
        s.add(z3.Implies(sel[k] == n, nxt == cur))
        for i, o in enumerate(ops):
            f, v, out = o["input"].f, o["input"].value, o["output"]
            here = sel[k] == i
            if f == "read":
                legal = z3.BoolVal(True) if out is UNKNOWN else cur == _z(out)
                eff = nxt == cur
            elif f == "write":
                legal, eff = z3.BoolVal(True), nxt == _z(v)
            else:  # cas
                a, b = _z(v[0]), _z(v[1])
                if out is UNKNOWN:
                    legal, eff = z3.BoolVal(True), nxt == z3.If(cur == a, b, cur)
                else:
                    legal, eff = cur == a, nxt == b
            s.add(z3.Implies(here, z3.And(legal, eff)))
    return s.check() == z3.sat


# ---- history generation ---------------------------------------------------------------------

VALUES = st.sampled_from([None, 0, 1, 2])


@st.composite
def histories(draw: Any, model_name: str = "cas-register", max_ops: int = 6) -> list[dict]:
    """A history linearizable by construction, possibly mutated afterwards."""
    model = models.REGISTRY[model_name]
    n = draw(st.integers(1, max_ops))
    nproc = draw(st.integers(1, 3))
    cursor = [0] * nproc
    plan = []
    for i in range(n):
        p = draw(st.integers(0, nproc - 1))
        if cursor[p] is None:
            continue
        start = cursor[p] + draw(st.integers(0, 4))
        lin = start + draw(st.integers(1, 4))
        end = lin + draw(st.integers(1, 4))
        kind = draw(st.sampled_from(["ok", "ok", "ok", "info", "info-none"]))
        inp = draw(_inputs(model_name))
        plan.append(
            {
                "p": p,
                "start": start * 8 + i % 8,
                "lin": lin * 8 + i % 8,
                "end": end * 8 + i % 8,
                "kind": kind,
                "input": inp,
            }
        )
        cursor[p] = None if kind.startswith("info") else end + 1
    # outputs: apply the ops in linearization order
    s = model.init()
    for op in sorted(plan, key=lambda o: o["lin"]):
        if op["kind"] == "info-none":
            continue
        inp = Call(op["input"]["f"], hashable(op["input"].get("value")), op["input"].get("key"))
        out = _result(model_name, s, inp)
        legal, s2 = model.step(s, inp, out)
        if not legal or out is _FAIL:
            op["kind"] = "fail" if op["kind"] == "ok" else op["kind"]
            op["out"] = None
            continue
        s = s2
        op["out"] = out
    events = []
    for op in plan:
        base = {"process": op["p"], "f": op["input"]["f"]}
        if "key" in op["input"]:
            base["key"] = op["input"]["key"]
        events.append((op["start"], {**base, "type": "invoke", "value": op["input"].get("value")}))
        t = {"ok": "ok", "fail": "fail"}.get(op["kind"], "info")
        if t == "info" and draw(st.booleans()):
            continue  # never completes
        events.append(
            (op["end"], {**base, "type": t, "value": op.get("out") if t == "ok" else None})
        )
    events.sort(key=lambda e: e[0])
    out = [dict(e, index=i, time=t) for i, (t, e) in enumerate(events)]
    if draw(st.booleans()):  # mutate one ok result
        oks = [e for e in out if e["type"] == "ok" and e["f"] in ("read", "get", "dequeue")]
        if oks:
            e = draw(st.sampled_from(oks))
            pool = [None, 0, 1, 2] if model_name != "kv" else ["", "a", "ab", "b", "ba"]
            e["value"] = draw(st.sampled_from([v for v in pool if v != e["value"]]))
    return out


_FAIL = object()


def _inputs(model_name: str) -> Any:
    if model_name in ("cas-register", "register"):
        fs = ["read", "write"] + (["cas"] if model_name == "cas-register" else [])
        return st.sampled_from(fs).flatmap(
            lambda f: (
                st.just({"f": f})
                if f == "read"
                else (
                    st.builds(lambda v: {"f": f, "value": v}, st.integers(0, 2))
                    if f == "write"
                    else st.builds(
                        lambda a, b: {"f": f, "value": [a, b]}, VALUES, st.integers(0, 2)
                    )
                )
            )
        )
    if model_name == "kv":
        return st.builds(
            lambda f, k, v: {"f": f, "key": k, "value": None if f == "get" else v},
            st.sampled_from(["get", "put", "append"]),
            st.sampled_from(["x", "y"]),
            st.sampled_from(["a", "b"]),
        )
    if model_name == "mutex":
        return st.builds(lambda f: {"f": f}, st.sampled_from(["acquire", "release"]))
    if model_name == "fifo-queue":
        return st.one_of(
            st.builds(lambda v: {"f": "enqueue", "value": v}, st.integers(0, 2)),
            st.just({"f": "dequeue"}),
        )
    raise AssertionError(model_name)


def _result(model_name: str, s: Any, inp: Call) -> Any:
    f = inp.f
    if f in ("read", "get"):
        return s
    if f == "cas":
        return inp.value if s == inp.value[0] else _FAIL
    if f == "dequeue":
        return s[0] if s else None
    if model_name == "mutex":
        legal, _ = models.REGISTRY["mutex"].step(s, inp, None)
        return None if legal else _FAIL
    return inp.value


# ---- the tests --------------------------------------------------------------------------------

SETTINGS = dict(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _agree_cas(events: list[dict]) -> None:
    got = check_history(events, "cas-register").verdict
    bf = brute_force(events, "cas-register")
    zz = z3_cas_register(events)
    assert bf == zz, f"oracles disagree: brute={bf} z3={zz}\n{events}"
    assert got == ("ok" if bf else "violation"), f"checker={got} oracles={bf}\n{events}"


@settings(max_examples=200, **SETTINGS)
@given(histories("cas-register", 6))
def test_cas_register_three_way(events: list[dict]) -> None:
    _agree_cas(events)


@pytest.mark.parametrize("model_name", ["register", "kv", "mutex", "fifo-queue"])
@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_other_models_against_brute_force(model_name: str, data: Any) -> None:
    events = data.draw(histories(model_name, 6))
    got = check_history(events, model_name).verdict
    assert got == ("ok" if brute_force(events, model_name) else "violation"), events


@settings(max_examples=100, **SETTINGS)
@given(histories("cas-register", 7))
def test_unmutated_constructions_are_linearizable(events: list[dict]) -> None:
    # whether or not mutated, the brute force decides; unmutated ones must pass
    if brute_force(events, "cas-register"):
        assert check_history(events, "cas-register").ok


@pytest.mark.slow
@settings(max_examples=10_000, **SETTINGS)
@given(histories("cas-register", 7))
def test_cas_register_three_way_10k(events: list[dict]) -> None:
    _agree_cas(events)


def test_known_small_cases() -> None:
    def ev(*rows: tuple) -> list[dict]:
        return [
            {"index": i, "time": i, "process": p, "type": t, "f": f, "value": v}
            for i, (p, t, f, v) in enumerate(rows)
        ]

    stale = ev(
        (0, "invoke", "write", 1),
        (0, "ok", "write", 1),
        (1, "invoke", "read", None),
        (1, "ok", "read", None),
    )
    concurrent = ev(
        (0, "invoke", "write", 1),
        (1, "invoke", "read", None),
        (1, "ok", "read", None),
        (0, "ok", "write", 1),
    )
    crashed = ev(
        (0, "invoke", "write", 1),
        (0, "info", "write", None),
        (1, "invoke", "read", None),
        (1, "ok", "read", 1),
    )
    crashed_never = ev(
        (0, "invoke", "write", 1),
        (0, "info", "write", None),
        (1, "invoke", "read", None),
        (1, "ok", "read", None),
    )
    failed = ev(
        (0, "invoke", "write", 1),
        (0, "fail", "write", None),
        (1, "invoke", "read", None),
        (1, "ok", "read", 1),
    )
    # a write that is an identity step now must not be taken greedily: it may matter later
    late_write = ev(
        (0, "invoke", "write", 1),
        (0, "ok", "write", 1),
        (1, "invoke", "write", 1),
        (2, "invoke", "write", 2),
        (2, "ok", "write", 2),
        (3, "invoke", "read", None),
        (3, "ok", "read", 1),
        (1, "ok", "write", 1),
    )
    assert check_history(late_write, "cas-register").ok
    for events, want in [
        (stale, False),
        (concurrent, True),
        (crashed, True),
        (crashed_never, True),
        (failed, False),
    ]:
        assert brute_force(events, "register") == want
        assert z3_cas_register(events) == want
        assert check_history(events, "cas-register").ok == want
