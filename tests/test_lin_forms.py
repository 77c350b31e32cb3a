"""The history forms real tools write, with the verdicts a Knossos/Porcupine user expects:
keyed ops (EDN ``:key``, JSONL ``key``, jepsen.independent ``[k v]`` values), Knossos' 5-element
tuples, initial values (``--init``), and the multi-register model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from treadle.checkers.linearizability import check_history

from treadle.codecs import parse_history
from treadle.errors import InputError, TreadleError


def _run(tmp_path: Path, name: str, text: str, *argv: str) -> tuple[int, dict]:
    from treadle.cli import main

    p = tmp_path / name
    p.write_text(text)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["check", str(p), "--json", *argv])
    return code, json.loads(out.getvalue()) if out.getvalue().strip() else {}


# two registers: key "a" is written 1 and read 1 while key "b" is written 2 and read 2; mixed
# into one register the reads would contradict each other (read 1 after write 2 returned)
KEYED_EDN = """\
{:process 0, :type :invoke, :f :write, :key "a", :value 1}
{:process 0, :type :ok, :f :write, :key "a", :value 1}
{:process 1, :type :invoke, :f :write, :key "b", :value 2}
{:process 1, :type :ok, :f :write, :key "b", :value 2}
{:process 2, :type :invoke, :f :read, :key "a", :value nil}
{:process 2, :type :ok, :f :read, :key "a", :value 1}
{:process 3, :type :invoke, :f :read, :key "b", :value nil}
{:process 3, :type :ok, :f :read, :key "b", :value 2}
"""


def test_keyed_edn_is_checked_per_key(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "k.edn", KEYED_EDN, "--model", "register")
    assert code == 0, out
    row = out["results"][0]
    assert {k["key"]: k["verdict"] for k in row["keys"]} == {"a": "ok", "b": "ok"}
    # mixed into one register, it is not linearizable: the keys matter
    unkeyed = KEYED_EDN.replace(':key "a", ', "").replace(':key "b", ', "")
    code, out = _run(tmp_path, "u.edn", unkeyed, "--model", "register")
    assert code == 1 and out["results"][0]["verdict"] == "violation"


def test_keyed_jsonl_violation_names_the_key(tmp_path: Path) -> None:
    lines = [
        {"type": "invoke", "process": 0, "f": "write", "key": "x", "value": 1},
        {"type": "ok", "process": 0, "f": "write", "key": "x", "value": 1},
        {"type": "invoke", "process": 0, "f": "read", "key": "y", "value": None},
        {"type": "ok", "process": 0, "f": "read", "key": "y", "value": 1},  # y was never 1
    ]
    text = "".join(json.dumps(e) + "\n" for e in lines)
    code, out = _run(tmp_path, "k.jsonl", text, "--model", "cas-register")
    assert code == 1
    keys = {k["key"]: k["verdict"] for k in out["results"][0]["keys"]}
    assert keys == {"x": "ok", "y": "violation"}
    assert 'key "y"' in out["results"][0]["message"]
    code, out = _run(tmp_path, "k.jsonl", text, "--model", "cas-register", "--key", "x")
    assert code == 0 and out["results"][0]["details"]["operations"] == 1
    code, out = _run(tmp_path, "k.jsonl", text, "--model", "cas-register", "--key", "zz")
    assert code == 2 and out["results"][0]["verdict"] == "error"


INDEPENDENT = """\
{:process 0, :type :invoke, :f :write, :value [0 1]}
{:process 1, :type :invoke, :f :write, :value [1 2]}
{:process 0, :type :ok, :f :write, :value [0 1]}
{:process 1, :type :ok, :f :write, :value [1 2]}
{:process 2, :type :invoke, :f :cas, :value [0 [1 3]]}
{:process 2, :type :ok, :f :cas, :value [0 [1 3]]}
{:process 3, :type :invoke, :f :read, :value [1 nil]}
{:process 3, :type :ok, :f :read, :value [1 2]}
{:process 3, :type :invoke, :f :read, :value [0 nil]}
{:process 3, :type :ok, :f :read, :value [0 3]}
"""


def test_jepsen_independent_tuples(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "i.edn", INDEPENDENT, "--model", "cas-register")
    assert code == 0, out
    assert {k["key"]: k["verdict"] for k in out["results"][0]["keys"]} == {0: "ok", 1: "ok"}
    bad = INDEPENDENT.replace(":value [0 3]}", ":value [0 1]}")  # key 0 holds 3 by then
    code, out = _run(tmp_path, "b.edn", bad, "--model", "cas-register")
    assert code == 1
    assert {k["key"]: k["verdict"] for k in out["results"][0]["keys"]}[0] == "violation"


def test_plain_cas_pairs_are_not_taken_for_independent_tuples() -> None:
    ev = parse_history(
        "{:process 0, :type :invoke, :f :cas, :value [nil 1]}\n"
        "{:process 0, :type :ok, :f :cas, :value [nil 1]}\n",
        "edn",
    )
    res = check_history(ev, "cas-register")
    assert res.verdict == "ok" and "keys" not in res.details


def test_knossos_five_tuples_and_initial_value(tmp_path: Path) -> None:
    text = (
        "[0 :invoke :read nil]\n"
        "[0 :ok :read 0]\n"
        "[1 :invoke :write 4]\n"
        "[1 :info :write :timeout :conn-lost]\n"
        "[71 :invoke :read nil]\n"
        "[71 :fail :read nil :conn-lost]\n"
        "[2 :invoke :cas [4 5]]\n"
        "[2 :ok :cas [4 5]]\n"
    )
    ev = parse_history(text, "edn")
    assert ev[5]["error"] == "conn-lost" and ev[5]["type"] == "fail"
    # (cas-register 0): the first read of 0 is legal only with the initial value 0
    code, out = _run(tmp_path, "t.edn", text, "--model", "cas-register", "--init", "0")
    assert code == 0, out
    code, out = _run(tmp_path, "t.edn", text, "--model", "cas-register")
    assert code == 1  # from nil, a read of 0 is impossible
    assert check_history(ev, "cas-register", init=0).verdict == "ok"


MULTI = """\
[{:type :invoke, :f :txn, :value [[:read :x nil] [:read :y nil]], :process 0}
 {:type :invoke, :f :txn,
  :value [[:write :x 1] [:write :y 1]], :process 1}
 {:type :ok, :f :txn, :value [[:read :x 0] [:read :y 0]], :process 0}
 {:type :ok, :f :txn, :value [[:write :x 1] [:write :y 1]], :process 1}
 {:type :invoke, :f :txn, :value [[:read :x nil] [:write :y 2]], :process 2}
 {:type :ok, :f :txn, :value [[:read :x 1] [:write :y 2]], :process 2}
 {:type :invoke, :f :txn, :value [[:read :y nil]], :process 0}
 {:type :ok, :f :txn, :value [[:read :y 2]], :process 0}]
"""


def test_multi_register(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "m.edn", MULTI, "--model", "multi-register", "--init", "{:x 0 :y 0}")
    assert code == 0, out
    code, out = _run(
        tmp_path, "m.edn", MULTI, "--model", "multi-register", "--init", '{"x": 0, "y": 0}'
    )
    assert code == 0, out
    # a torn transaction: x from after the write, y from before it
    torn = MULTI.replace("[[:read :x 0] [:read :y 0]]", "[[:read :x 1] [:read :y 0]]")
    code, out = _run(tmp_path, "t.edn", torn, "--model", "multi-register", "--init", "{:x 0 :y 0}")
    assert code == 1
    # without the initial map, registers start nil, so reading 0 is impossible
    code, out = _run(tmp_path, "m.edn", MULTI, "--model", "multi-register")
    assert code == 1


def test_init_must_fit_the_model() -> None:
    ev = parse_history(
        '{"type":"invoke","process":0,"f":"txn","value":[["r","x",null]]}\n', "jsonl"
    )
    with pytest.raises(TreadleError):
        check_history(ev, "multi-register", init=5)


def test_unknown_f_lists_the_models_operations() -> None:
    ev = parse_history('{"type":"invoke","process":0,"f":"incr","value":1}\n', "jsonl")
    with pytest.raises(InputError) as e:
        check_history(ev, "cas-register", source="h.jsonl")
    assert "read, write, cas" in str(e.value) and "incr" in str(e.value)


def test_empty_history_is_linearizable(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "e.jsonl", "", "--model", "register")
    assert code == 0 and "0 operations" in out["results"][0]["message"]
