"""Counterexample explanations: when the kv lookahead kills every way on, say which get can no
longer be satisfied and why (not just "no way on from there")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from treadle.checkers.linearizability import check_history, render_text

from treadle.codecs import read_history

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "porcupine"


def _ev(rows: list[tuple]) -> list[dict]:
    return [
        {"index": i, "time": i, "process": p, "type": t, "f": f, "key": "k", "value": v}
        for i, (p, t, f, v) in enumerate(rows)
    ]


def test_blocking_get_is_named_with_the_reason() -> None:
    # two concurrent appends; a get sees "b" first, then a later get sees "a" only: whichever
    # append goes first, one of the gets can never be satisfied
    events = _ev(
        [
            (0, "invoke", "append", "a"),
            (1, "invoke", "append", "b"),
            (2, "invoke", "get", None),
            (2, "ok", "get", "b"),
            (0, "ok", "append", "a"),
            (1, "ok", "append", "b"),
            (2, "invoke", "get", None),
            (2, "ok", "get", "a"),
        ]
    )
    res = check_history(events, "kv")
    assert res.verdict == "violation"
    cex = res.details["counterexample"]
    nxt = cex["prefixes"][0]["next"]
    blocked = [x for x in nxt if "blocked_by" in x]
    assert blocked, nxt
    text = render_text(cex)
    assert "can no longer be satisfied" in text
    assert "is not a prefix of" in text
    assert "no way on from there" not in text


@pytest.mark.skipif(not CORPUS.exists(), reason="corpus not present")
def test_c50_bad_explains_the_dead_end() -> None:
    events = read_history(str(CORPUS / "kv" / "c50-bad.txt"), "porcupine-kv")
    res = check_history(events, "kv")
    assert res.verdict == "violation"
    assert 'for key "0"' in res.message
    # the real culprit: a get of "" long after appends to the key completed
    assert 'get("0") -> "" (event 2419->2428) can no longer be satisfied' in res.message
    assert "no way on from there" not in res.message


def test_html_marks_blocker_and_draws_only_the_failing_partition() -> None:
    from treadle.checkers.linearizability.html import render_html

    events = _ev(
        [
            (0, "invoke", "append", "a"),
            (1, "invoke", "append", "b"),
            (2, "invoke", "get", None),
            (2, "ok", "get", "b"),
            (0, "ok", "append", "a"),
            (1, "ok", "append", "b"),
            (2, "invoke", "get", None),
            (2, "ok", "get", "a"),
        ]
    )
    # another key, fine on its own, by a process that the failing key never uses
    other = [
        {"process": 9, "type": "invoke", "f": "put", "key": "z", "value": "q"},
        {"process": 9, "type": "ok", "f": "put", "key": "z", "value": "q"},
    ]
    events = other + events
    res = check_history(events, "kv")
    assert res.verdict == "violation"
    page = render_html([("h.jsonl", res, events)])
    assert re.search(r'class="op [^"]*\bblocker\b', page)  # the get made unsatisfiable
    assert "fail-line" in page and "stuck" in page
    assert "process 9" not in page  # only key "k" is drawn
    assert "{op:" not in page  # references to operations are resolved
    assert "http://" not in page and "https://" not in page
