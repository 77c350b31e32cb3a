"""Every hostile input the checker must refuse: exit 2 and one line naming the file (and the
line) and what was expected; batches go on past a bad file; exit codes combine as documented."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from treadle.cli import main

INV_W1 = '{"type":"invoke","process":0,"f":"write","value":1}\n'
OK_W1 = '{"type":"ok","process":0,"f":"write","value":1}\n'

CASES = {
    "unknown-f": (
        '{"type":"invoke","process":0,"f":"reed","value":null}\n',
        ["--model", "register"],
        ":1: unknown f 'reed' for model register; expected one of read, write",
    ),
    "f-mismatch": (
        INV_W1 + '{"type":"ok","process":0,"f":"read","value":1}\n',
        ["--model", "register"],
        ":2: ",
    ),
    "bad-client-type": (
        INV_W1 + '{"type":"invoked","process":0,"f":"write","value":1}\n',
        ["--model", "register"],
        "expected invoke, ok, fail or info",
    ),
    "completion-without-invoke": (OK_W1, ["--model", "register"], "no open invoke"),
    "two-invokes": (INV_W1 + INV_W1, ["--model", "register"], ":2: process 0 invokes again"),
    "nan": (INV_W1.replace("1}", "NaN}"), ["--model", "register"], "non-finite"),
    "infinity": (INV_W1.replace("1}", "-Infinity}"), ["--model", "register"], "non-finite"),
    "overflow": (INV_W1.replace("1}", "1e400}"), ["--model", "register"], "non-finite"),
    "deep-jsonl": (
        INV_W1.replace("1}", "[" * 100_000 + "]" * 100_000 + "}"),
        ["--model", "register"],
        "nest deeper than the limit of 100",
    ),
    "deep-edn": (
        "{:process 0 :type :invoke :f :write :value " + "[" * 100_000 + "}\n",
        ["--model", "register"],
        "nest deeper than the limit of 100",
    ),
    "deep-porcupine-kv": (
        '{:process 0, :type :invoke, :f :put, :key "a", :value ' + "{" * 100_000 + "\n",
        ["--model", "kv", "--format", "porcupine-kv"],
        ":1: ",
    ),
    "cas-three": (
        "{:process 0 :type :invoke :f :cas :value [1 2 3]}\n",
        ["--model", "cas-register"],
        "expected a cas value [old new]",
    ),
    "no-raft-events": (INV_W1 + OK_W1, ["--model", "raft"], "no raft events in"),
    "no-pbft-events": (INV_W1 + OK_W1, ["--model", "pbft"], "no pbft events in"),
    "no-breaker-events": (INV_W1 + OK_W1, ["--model", "breaker"], "no breaker events in"),
    "no-mesh-events": (INV_W1 + OK_W1, ["--model", "mesh"], "no mesh events in"),
    "no-kv-store-events": (INV_W1 + OK_W1, ["--model", "kv-store"], "no kv-store events in"),
    "no-eventstore-events": (INV_W1 + OK_W1, ["--model", "eventstore"], "no eventstore events"),
    "unknown-model": (INV_W1 + OK_W1, ["--model", "linearizability"], "unknown model"),
    "bad-init": (INV_W1 + OK_W1, ["--model", "register", "--init", "{oops"], "--init"),
}


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_is_one_line_exit_2(tmp_path: Path, name: str) -> None:
    text, args, expected = CASES[name]
    p = tmp_path / "h.hist"
    p.write_text(text)
    code, _, err = _cli("check", str(p), *args)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert expected in err, err
    if name not in ("unknown-model", "bad-init"):
        assert str(p) in err
    assert len(err) < 600


def test_invalid_utf8_names_the_byte_offset(tmp_path: Path) -> None:
    p = tmp_path / "u.jsonl"
    data = INV_W1.encode() + b'{"type":"ok","process":0,"f":"write","value":"\xc3\x28"}\n'
    p.write_bytes(data)
    code, _, err = _cli("check", str(p), "--model", "register")
    assert code == 2 and f"{p}:2: invalid UTF-8 at byte offset {data.index(0xC3)}" in err, err


def test_batch_goes_on_and_exit_codes_combine(tmp_path: Path) -> None:
    ok = tmp_path / "ok.jsonl"
    ok.write_text(INV_W1 + OK_W1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        INV_W1 + OK_W1 + '{"type":"invoke","process":0,"f":"read","value":null}\n'
        '{"type":"ok","process":0,"f":"read","value":7}\n'
    )
    missing = tmp_path / "missing.jsonl"
    code, out, err = _cli("check", str(missing), str(bad), str(ok), "--model", "register", "--json")
    rows = json.loads(out)["results"]
    assert code == 2 and [r["verdict"] for r in rows] == ["error", "violation", "ok"]
    assert "no such file" in rows[0]["message"] and err.count("\n") == 1
    code, out, _ = _cli("check", str(ok), str(bad), "--model", "register")
    assert code == 1
    code, _, _ = _cli("check", str(ok), "--model", "register")
    assert code == 0


def test_unknown_is_exit_3_unless_worse(tmp_path: Path) -> None:
    # a timeout of 0 leaves a concurrent history undecided
    lines = []
    for p in range(6):
        lines.append(json.dumps({"type": "invoke", "process": p, "f": "write", "value": p}))
    for p in range(6):
        lines.append(json.dumps({"type": "ok", "process": p, "f": "write", "value": p}))
    slow = tmp_path / "slow.jsonl"
    slow.write_text("\n".join(lines) + "\n")
    ok = tmp_path / "ok.jsonl"
    ok.write_text(INV_W1 + OK_W1)
    code, out, _ = _cli(
        "check", str(slow), str(ok), "--model", "register", "--timeout", "0", "--json"
    )
    verdicts = [r["verdict"] for r in json.loads(out)["results"]]
    assert verdicts[1] == "ok"
    assert code == (3 if verdicts[0] == "unknown" else 0)


def test_html_into_missing_folder_is_an_error(tmp_path: Path) -> None:
    ok = tmp_path / "ok.jsonl"
    ok.write_text(INV_W1 + OK_W1)
    code, _, err = _cli(
        "check", str(ok), "--model", "register", "--html", str(tmp_path / "nope" / "x.html")
    )
    assert code == 2 and "does not exist" in err


def test_memory_bound_gives_unknown() -> None:
    from treadle.checkers.linearizability import check_operations
    from treadle.checkers.linearizability.ops import pair_operations
    from treadle.models import REGISTRY

    events = [
        json.loads(line)
        for line in (
            INV_W1
            + INV_W1.replace('"process":0', '"process":1')
            + OK_W1
            + OK_W1.replace('"process":0', '"process":1')
        ).splitlines()
    ]
    ops, _ = pair_operations(events)
    model = REGISTRY["register"]
    verdict, _, _, _, stats = check_operations(ops, model, slice_steps=1, max_memory=1)
    assert verdict == "unknown" and "memory bound" in stats["stopped"]
    verdict, *_ = check_operations(ops, model, slice_steps=1)
    assert verdict == "ok"


def test_last_resort_handler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import treadle.cli as cli

    def boom(args: object) -> int:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setitem(cli.COMMANDS, "list", boom)
    code, _, err = _cli("list")
    assert code == 2 and err.count("\n") == 1 and "internal error: RuntimeError" in err
    monkeypatch.setenv("TREADLE_DEBUG", "1")
    code, _, err = _cli("list")
    assert code == 2 and "Traceback" in err
