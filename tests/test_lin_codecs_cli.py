"""Codecs (EDN, Porcupine formats, errors), check_cmd exit codes, racing and timeouts."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from treadle.checkers.linearizability import check_history, check_operations
from treadle.checkers.linearizability.ops import pair_operations
from treadle.models import REGISTRY

from treadle.check_cmd import run
from treadle.codecs import parse_history, read_history
from treadle.codecs.edn import EdnError, Keyword, loads
from treadle.errors import InputError


def test_edn_values() -> None:
    v = loads('[nil true 1 -2 2.5 "a\\"b\\n" :k :ns/x #{1} {:a [1 2]} (3) \\c #inst "2020" #_ 9 7]')
    assert v == [
        None,
        True,
        1,
        -2,
        2.5,
        'a"b\n',
        "k",
        "ns/x",
        frozenset({1}),
        {"a": [1, 2]},
        [3],
        "c",
        "2020",
        7,
    ]
    assert isinstance(v[6], Keyword)
    for bad in ["[1 2", '"abc', "{:a}", "#?x", ")"]:
        with pytest.raises(EdnError):
            loads(bad)


def test_edn_map_and_tuple_forms_agree() -> None:
    maps = "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 1}\n{:process :nemesis, :type :info, :f :start, :value nil}\n"
    tuples = "0\t:invoke\t:write\t1\n0 :ok :write 1\n:nemesis :info :start nil\n"
    vec = "[" + maps + "]"
    a, b, c = (parse_history(t, "edn") for t in (maps, tuples, vec))
    strip = lambda evs: [{k: e[k] for k in ("type", "f", "value")} for e in evs]  # noqa: E731
    assert strip(a) == strip(b) == strip(c)
    assert a[2]["type"] == "nemesis" and "process" not in a[2]
    assert parse_history(maps, "auto") == a


def test_bad_input_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "h.edn"
    p.write_text("{:process 0, :type :invoke, :f :read, :value nil}\n{:process 0, :type :okk}\n")
    with pytest.raises(InputError) as e:
        read_history(str(p), "edn")
    assert e.value.line == 2 and str(p) in str(e.value)
    q = tmp_path / "e.log"
    q.write_text("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - x :ok :read 3\n")
    with pytest.raises(InputError) as e:
        read_history(str(q), "porcupine-etcd")
    assert e.value.line == 2


def test_porcupine_etcd_semantics() -> None:
    text = (
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\n"
        "INFO  jepsen.util - 0\t:info\t:write\t:timed-out\n"
        "INFO  jepsen.util - 1\t:invoke\t:read\tnil\n"
        "INFO  jepsen.util - 1   :fail   :read   :timed-out\n"
        "INFO  jepsen.util - 2\t:invoke\t:cas\t[1 2]\n"
        "INFO  jepsen.util - 2\t:fail\t:cas\t[1 2]\n"
    )
    evs = parse_history(text, "auto")
    assert [e["type"] for e in evs] == ["invoke", "info", "invoke", "info", "invoke", "fail"]
    assert evs[4]["value"] == [1, 2]
    assert check_history(evs, "cas-register").ok


def _ns(files: list[str], **kw) -> argparse.Namespace:
    d = dict(files=files, model=None, format="auto", timeout=None, json=False, html=None)
    d.update(kw)
    return argparse.Namespace(**d)


def _write(tmp_path: Path, name: str, events: list[dict]) -> str:
    p = tmp_path / name
    p.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(p)


OK = [
    {"index": 0, "time": 0, "type": "invoke", "process": 0, "f": "write", "value": 1},
    {"index": 1, "time": 1, "type": "became-leader", "node": "n1"},
    {"index": 2, "time": 2, "type": "ok", "process": 0, "f": "write", "value": 1},
    {"index": 3, "time": 3, "type": "invoke", "process": 1, "f": "read", "value": None},
    {"index": 4, "time": 4, "type": "ok", "process": 1, "f": "read", "value": 1},
]
BAD = OK[:4] + [{"index": 4, "time": 4, "type": "ok", "process": 1, "f": "read", "value": 2}]


def test_check_cmd_exit_codes_json_and_html(tmp_path: Path) -> None:
    ok, bad = _write(tmp_path, "ok.jsonl", OK), _write(tmp_path, "bad.jsonl", BAD)
    out, err = io.StringIO(), io.StringIO()
    assert run(_ns([ok], model="register"), out, err) == 0
    assert "linearizable" in out.getvalue()
    out = io.StringIO()
    html = tmp_path / "r.html"
    assert run(_ns([ok, bad], model="cas-register", json=True, html=str(html)), out, err) == 1
    doc = json.loads(out.getvalue())
    assert [r["verdict"] for r in doc["results"]] == ["ok", "violation"]
    assert {"file", "elapsed_s", "model", "property", "message", "details"} <= set(
        doc["results"][1]
    )
    page = html.read_text()
    assert "<script>" in page and "http://" not in page and "https://" not in page
    assert "stuck" in page and "fail-line" in page
    # bad usage / input: exit 2 and one line on stderr
    err = io.StringIO()
    assert run(_ns([ok], model="no-such-model"), io.StringIO(), err) == 2
    assert err.getvalue().startswith("error: ") and "cas-register" in err.getvalue()
    err = io.StringIO()
    assert run(_ns([ok]), io.StringIO(), err) == 2  # jsonl implies no model
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"type": "invoke", "process": 0, "f": "read"}\n{oops\n')
    err = io.StringIO()
    assert run(_ns([str(broken)], model="register"), io.StringIO(), err) == 2
    assert f"{broken}:2:" in err.getvalue() and err.getvalue().count("\n") == 1


def test_timeout_gives_unknown() -> None:
    path = (
        Path(__file__).resolve().parents[2]
        / "shared"
        / "corpus"
        / "porcupine"
        / "jepsen"
        / "etcd_002.log"
    )
    if not path.exists():
        pytest.skip("corpus absent")
    ops, _ = pair_operations(read_history(str(path)))
    verdict, *_ = check_operations(ops, REGISTRY["cas-register"], timeout=0.0, slice_steps=1)
    assert verdict == "unknown"


def _hard_and_easy() -> list[dict]:
    """Key "hard": 18 concurrent writes then a read of a value nobody wrote (exhaustive search
    over 2^18 subsets); key "easy": a read of a value nobody wrote."""
    evs = []
    for p in range(18):
        evs.append({"type": "invoke", "process": p, "f": "put", "key": "hard", "value": f"v{p}"})
    for p in range(18):
        evs.append({"type": "ok", "process": p, "f": "put", "key": "hard", "value": f"v{p}"})
    evs += [
        {"type": "invoke", "process": 99, "f": "get", "key": "hard", "value": None},
        {"type": "ok", "process": 99, "f": "get", "key": "hard", "value": "nobody"},
        {"type": "invoke", "process": 98, "f": "get", "key": "easy", "value": None},
        {"type": "ok", "process": 98, "f": "get", "key": "easy", "value": "nobody"},
    ]
    return [dict(e, index=i, time=i) for i, e in enumerate(evs)]


def test_partitions_are_raced() -> None:
    from dataclasses import replace

    # without kv's lookahead hints the "hard" key needs a long exhaustive search
    plain = replace(REGISTRY["kv"], monotone=None, reachable=None, restart=None)
    res = check_history(_hard_and_easy(), plain, timeout=5)
    assert res.verdict == "violation"
    assert res.details["counterexample"]["partition_key"] == "easy"


def _evs(rows: list[tuple]) -> list[dict]:
    return [
        {"index": i, "time": i, "process": p, "type": t, "f": f, "value": v}
        for i, (p, t, f, v) in enumerate(rows)
    ]


def test_txn_register_and_set_models() -> None:
    w = [["w", "x", 1], ["w", "y", 2]]
    good = _evs(
        [
            (0, "invoke", "txn", w),
            (0, "ok", "txn", w),
            (1, "invoke", "txn", [["r", "x", None], ["r", "y", None]]),
            (1, "ok", "txn", [["r", "x", 1], ["r", "y", 2]]),
        ]
    )
    torn = good[:3] + [dict(good[3], value=[["r", "x", 1], ["r", "y", None]])]
    assert check_history(good, "txn-register").ok
    assert check_history(torn, "txn-register").violated
    s = _evs(
        [
            (0, "invoke", "add", 1),
            (1, "invoke", "add", 2),
            (0, "ok", "add", 1),
            (2, "invoke", "read", None),
            (2, "ok", "read", [1]),
            (1, "ok", "add", 2),
            (2, "invoke", "read", None),
            (2, "ok", "read", [2]),
        ]
    )
    assert check_history(s[:6], "set").ok
    assert check_history(s, "set").violated
