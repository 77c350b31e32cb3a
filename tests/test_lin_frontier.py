"""The just-in-time frontier walk (used on long segments) and the segment cuts, against the
brute-force oracle: with the frontier forced on every segment, and with cuts only, the
verdicts agree with the oracle on generated histories (linearizable by construction, and
mutated), for several models, including crashed (info) operations and start states."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from treadle.checkers.linearizability import check_history, segments

from tests.test_lin_differential import stressing
from tests.test_lin_oracle import SETTINGS, brute_force, histories


def _check(events: list[dict], model_name: str) -> None:
    saved = segments.FRONTIER_OPS
    segments.FRONTIER_OPS = 0  # every segment through the frontier walk
    try:
        got = check_history(events, model_name)
    finally:
        segments.FRONTIER_OPS = saved
    want = brute_force(events, model_name)
    assert got.verdict == ("ok" if want else "violation"), f"oracle={want}\n{events}"
    if got.verdict == "violation":  # the report's window search found the witness too
        assert got.details["counterexample"]["operations"]


@pytest.mark.parametrize("model_name", ["cas-register", "kv"])
@settings(max_examples=120, **SETTINGS)
@given(data=st.data())
def test_frontier_against_brute_force(model_name: str, data: Any) -> None:
    _check(data.draw(stressing(model_name)), model_name)


@pytest.mark.parametrize("model_name", ["register", "mutex", "fifo-queue"])
@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_frontier_other_models(model_name: str, data: Any) -> None:
    _check(data.draw(histories(model_name, 6)), model_name)


def test_long_sequential_history_is_cut_into_single_steps() -> None:
    ev = []
    for i in range(3000):
        ev += [
            {"type": "invoke", "process": i % 3, "f": "write", "value": i},
            {"type": "ok", "process": i % 3, "f": "write", "value": i},
            {"type": "invoke", "process": 7, "f": "read", "value": None},
            {"type": "ok", "process": 7, "f": "read", "value": i},
        ]
    res = check_history(ev, "register")
    assert res.verdict == "ok" and res.details["segments"] == 6000
    ev[-1] = dict(ev[-1], value=5)
    res = check_history(ev, "register")
    assert res.verdict == "violation"
    ops = res.details["counterexample"]["operations"]
    assert 1 < len(ops) <= segments.CONTEXT_OPS + 1  # the failing read with some context


def test_long_busy_history_goes_through_the_frontier() -> None:
    # two clients always overlapping: no cut anywhere, one segment of 4000 operations
    ev = [{"type": "invoke", "process": 0, "f": "write", "value": 0}]
    for i in range(2000):
        ev += [
            {"type": "invoke", "process": 1, "f": "read", "value": None},
            {"type": "ok", "process": 0, "f": "write", "value": i},
            {"type": "invoke", "process": 0, "f": "write", "value": i + 1},
            {"type": "ok", "process": 1, "f": "read", "value": i},
        ]
    ev.append({"type": "ok", "process": 0, "f": "write", "value": 2000})
    res = check_history(ev, "register")
    assert res.details["segments"] == 1
    assert res.verdict == "ok", res.message
    bad = [dict(e) for e in ev]
    reads = [i for i, e in enumerate(bad) if e["type"] == "ok" and e["f"] == "read"]
    bad[reads[1500]]["value"] = 3  # long overwritten
    res = check_history(bad, "register")
    assert res.verdict == "violation"
    assert "read() -> 3" in res.message
