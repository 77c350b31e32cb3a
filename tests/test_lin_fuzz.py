"""Fuzzing `treadle check` with hostile inputs, in every format.

Two sources of cases:

* Hypothesis-generated files: JSON Lines events with hostile fields (wrong types, unknown
  ``f``, bad ``type``, NaN/Infinity, huge numbers, deep nesting, unpaired completions), EDN in
  the map and tuple forms, Porcupine logs, and raw bytes (invalid UTF-8 included);
* a mutator over seed histories (the shared corpus in ../shared/corpus when present, and a few
  hand-made ones in each form): byte flips, deleted, duplicated and swapped lines, swapped
  fields, deep nesting, huge numbers, truncation.

Every case must end with an exit code in {0, 1, 2, 3}, no traceback, exactly one line on stderr
for exit 2, and within a generous time bound (a hang guard, not a performance assertion). The
default variant is derandomized and takes a few seconds; ``-m slow`` runs thousands of cases,
part of them through a real ``treadle`` subprocess.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "porcupine"
HANG_GUARD_S = 60  # per case; real cases take milliseconds

SEEDS: dict[str, tuple[str, str]] = {  # name -> (format, text)
    "jsonl": (
        "jsonl",
        '{"type":"invoke","process":0,"f":"write","value":1,"key":"a"}\n'
        '{"type":"invoke","process":1,"f":"read","value":null,"key":"a"}\n'
        '{"type":"ok","process":0,"f":"write","value":1,"key":"a"}\n'
        '{"type":"ok","process":1,"f":"read","value":1,"key":"a"}\n'
        '{"type":"invoke","process":2,"f":"cas","value":[1,2],"key":"b"}\n'
        '{"type":"info","process":2,"f":"cas","value":[1,2],"key":"b"}\n',
    ),
    "edn-maps": (
        "edn",
        "[{:process 0, :type :invoke, :f :write, :value [0 1]}\n"
        " {:process 1, :type :invoke, :f :read, :value [0 nil]}\n"
        " {:process 0, :type :ok, :f :write, :value [0 1]}\n"
        " {:process 1, :type :ok, :f :read, :value [0 1]}\n"
        " {:process :nemesis, :type :info, :f :start, :value nil}]\n",
    ),
    "edn-tuples": (
        "edn",
        "0 :invoke :write 3\n1 :invoke :read nil\n0 :ok :write 3\n1 :ok :read 3\n"
        "[71 :invoke :read nil]\n[71 :fail :read nil :conn-lost]\n",
    ),
    "multi-register": (
        "edn",
        "{:type :invoke, :f :txn, :value [[:read :x nil] [:write :y 2]], :process 0}\n"
        "{:type :ok, :f :txn, :value [[:read :x 0] [:write :y 2]], :process 0}\n",
    ),
    "etcd": (
        "porcupine-etcd",
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t1\n"
        "INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2]\nINFO  jepsen.util - 1\t:info\t:cas\t:timed-out\n",
    ),
    "kv": (
        "porcupine-kv",
        '{:process 0, :type :invoke, :f :put, :key "1", :value "x"}\n'
        '{:process 0, :type :ok, :f :put, :key "1", :value "x"}\n'
        '{:process 1, :type :invoke, :f :get, :key "1", :value nil}\n'
        '{:process 1, :type :ok, :f :get, :key "1", :value "x"}\n',
    ),
}
MODEL_FOR = {
    "jsonl": ["cas-register", "register", "kv", "set", "raft"],
    "edn": ["cas-register", "multi-register", "register"],
    "porcupine-etcd": ["cas-register"],
    "porcupine-kv": ["kv"],
    "auto": ["cas-register", "kv", "mutex", "fifo-queue", "eventstore"],
}


def _corpus_seeds() -> list[tuple[str, str, bytes]]:
    """(format, name, bytes) of small corpus files (big ones make slow searches, not bugs)."""
    out = []
    for sub, fmt in (("jepsen", "porcupine-etcd"), ("kv", "porcupine-kv")):
        d = CORPUS / sub
        if d.is_dir():
            for f in sorted(d.iterdir())[:12]:
                if f.stat().st_size < 40_000:
                    out.append((fmt, f"{sub}/{f.name}", f.read_bytes()))
    return out


SEED_LIST = [(fmt, name, text.encode()) for name, (fmt, text) in SEEDS.items()] + _corpus_seeds()


# ---- running one case --------------------------------------------------------------------------


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang()


def check_case(tmp: Path, data: bytes, fmt: str, model: str, subprocess_run: bool = False) -> int:
    path = tmp / "case.hist"
    path.write_bytes(data)
    argv = ["check", str(path), "--model", model, "--timeout", "5", "--max-memory", "3G"]
    if fmt != "auto":
        argv += ["--format", fmt]
    if subprocess_run:
        p = subprocess.run(
            [sys.executable, "-m", "treadle.cli", *argv],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
            env={k: v for k, v in os.environ.items() if k != "TREADLE_DEBUG"},
        )
        code, err = p.returncode, p.stderr
    else:
        from treadle.cli import main

        out, errbuf = io.StringIO(), io.StringIO()
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(HANG_GUARD_S)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errbuf):
                code = main(argv)
        except _Hang:
            pytest.fail(f"hang: no answer within {HANG_GUARD_S} s for {data[:300]!r}")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        err = errbuf.getvalue()
    assert code in (0, 1, 2, 3), (code, err, data[:300])
    assert "Traceback" not in err, (err, data[:300])
    if code == 2:
        lines = err.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("error: "), (err, data[:300])
    return code


# ---- the mutator ---------------------------------------------------------------------------------


@st.composite
def mutated(draw: Any) -> tuple[str, bytes]:
    fmt, _, data = draw(st.sampled_from(SEED_LIST))
    lines = data.split(b"\n")
    for _ in range(draw(st.integers(1, 4))):
        how = draw(
            st.sampled_from(
                ["flip", "delete", "dup", "swap", "fields", "nest", "huge", "truncate", "junk"]
            )
        )
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        if how == "flip" and line:
            j = draw(st.integers(0, len(line) - 1))
            b = draw(st.integers(0, 255))
            lines[i] = line[:j] + bytes([b]) + line[j + 1 :]
        elif how == "delete":
            del lines[i]
        elif how == "dup":
            lines.insert(i, line)
        elif how == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif how == "fields":
            parts = line.replace(b"\t", b" ").split(b" ")
            if len(parts) > 1:
                a = draw(st.integers(0, len(parts) - 1))
                b2 = draw(st.integers(0, len(parts) - 1))
                parts[a], parts[b2] = parts[b2], parts[a]
                lines[i] = b" ".join(parts)
        elif how == "nest":
            depth = draw(st.sampled_from([3, 99, 101, 1000, 100_000]))
            opener = draw(st.sampled_from([b"[", b"{", b"(", b'{"a":', b"#{", b"#tag "]))
            j = draw(st.integers(0, len(line)))
            closer = {b"[": b"]", b"{": b"}", b"(": b")", b'{"a":': b"}", b"#{": b"}"}
            close = closer.get(opener, b"") * depth if draw(st.booleans()) else b""
            lines[i] = line[:j] + opener * depth + b"1" + close + line[j:]
        elif how == "huge":
            num = draw(
                st.sampled_from([b"9" * 5000, b"1e999", b"-1e999", b"NaN", b"Infinity", b"1/0"])
            )
            digits = [k for k, c in enumerate(line) if chr(c).isdigit()]
            if digits:
                k = draw(st.sampled_from(digits))
                lines[i] = line[:k] + num + line[k + 1 :]
        elif how == "truncate":
            lines = lines[: i + 1]
            lines[-1] = line[: draw(st.integers(0, len(line)))]
        elif how == "junk":
            lines.insert(i, draw(st.binary(max_size=40)))
    fmt = draw(st.sampled_from([fmt, fmt, "auto"]))
    return fmt, b"\n".join(lines)


# ---- generated hostile histories ------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json_values = st.recursive(
    _scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=8,
)
_raw_numbers = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "9" * 5000, "1" * 100])


@st.composite
def generated(draw: Any) -> tuple[str, bytes]:
    import json

    kind = draw(st.sampled_from(["jsonl", "edn", "etcd", "bytes"]))
    n = draw(st.integers(0, 12))
    out: list[str] = []
    if kind == "jsonl":
        for _ in range(n):
            ev: dict[str, Any] = {}
            if draw(st.booleans()):
                ev["type"] = draw(st.sampled_from(["invoke", "ok", "fail", "info", "invoked", ""]))
            else:
                ev["type"] = draw(_json_values)
            if draw(st.integers(0, 9)):
                ev["process"] = draw(st.sampled_from([0, 1, 2, "nemesis"]) | _json_values)
            ev["f"] = draw(st.sampled_from(["read", "write", "cas", "get", "put", "reed"]))
            ev["value"] = draw(_json_values)
            if draw(st.booleans()):
                ev["key"] = draw(st.sampled_from(["a", "b", 0]) | _json_values)
            line = json.dumps(ev)
            if draw(st.integers(0, 5)) == 0:
                line = line.replace(json.dumps(ev["value"]), draw(_raw_numbers), 1)
            out.append(line)
        return "jsonl", ("\n".join(out) + "\n").encode()
    if kind == "edn":
        toks = st.sampled_from(
            [
                ":invoke",
                ":ok",
                ":fail",
                ":info",
                ":read",
                ":write",
                ":cas",
                "nil",
                "0",
                "1",
                "[1 2]",
                "[1 2 3]",
                ":nemesis",
                '"s"',
                "#{1}",
                "{:a 1}",
                "1e999",
                "##NaN",
                "\\c",
                "#_",
                "(",
                ")",
                "[",
                "]",
                "1/0",
                ":txn",
                "[[:read :x nil]]",
            ]
        )
        tuple_form = draw(st.booleans())
        for _ in range(n):
            if tuple_form:
                out.append(
                    " ".join([str(draw(st.integers(0, 3)))] + draw(st.lists(toks, max_size=5)))
                )
            else:
                fields = {
                    ":process": draw(st.sampled_from(["0", "1", ":nemesis", "nil"])),
                    ":type": draw(toks),
                    ":f": draw(toks),
                    ":value": draw(toks),
                }
                out.append("{" + ", ".join(f"{k} {v}" for k, v in fields.items()) + "}")
        return "edn", ("\n".join(out) + "\n").encode()
    if kind == "etcd":
        for _ in range(n):
            out.append(
                f"INFO  jepsen.util - {draw(st.integers(0, 3))}\t"
                f"{draw(st.sampled_from([':invoke', ':ok', ':fail', ':info', ':bad']))}\t"
                f"{draw(st.sampled_from([':read', ':write', ':cas', ':x']))}\t"
                f"{draw(st.sampled_from(['nil', '1', '[1 2]', ':timed-out', '[1 2 3]', 'x']))}"
            )
        return "porcupine-etcd", ("\n".join(out) + "\n").encode()
    return "auto", draw(st.binary(max_size=200))


FAST = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = settings(
    max_examples=3000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _model(data: Any, fmt: str) -> str:
    return data.draw(st.sampled_from(MODEL_FOR[fmt]))


@FAST
@given(case=mutated(), data=st.data())
def test_fuzz_mutated_seeds(tmp_path_factory: Any, case: tuple[str, bytes], data: Any) -> None:
    fmt, blob = case
    check_case(tmp_path_factory.mktemp("f"), blob, fmt, _model(data, fmt))


@FAST
@given(case=generated(), data=st.data())
def test_fuzz_generated(tmp_path_factory: Any, case: tuple[str, bytes], data: Any) -> None:
    fmt, blob = case
    check_case(tmp_path_factory.mktemp("f"), blob, fmt, _model(data, fmt))


def test_fuzz_real_cli_on_hostile_classics(tmp_path: Path) -> None:
    # the same contract through the installed command, on the inputs that used to crash it
    cases = [
        ("jsonl", b'{"type":"invoke","process":0,"f":"write","value":' + b"[" * 100_000 + b"}\n"),
        ("edn", b"{:process 0 :type :invoke :f :write :value " + b"[" * 100_000 + b"}\n"),
        ("porcupine-kv", b"{:process 0, :type :invoke, :f :put, :key " + b"[" * 100_000 + b"\n"),
        ("jsonl", b'{"type":"invoke","process":0,"f":"write","value":NaN}\n'),
        ("auto", b"\xff\xfe\x00garbage\n"),
    ]
    for fmt, blob in cases:
        model = "kv" if fmt == "porcupine-kv" else "register"
        assert check_case(tmp_path, blob, fmt, model, subprocess_run=True) == 2


@pytest.mark.slow
@SLOW
@given(case=st.one_of(mutated(), generated()), data=st.data())
def test_fuzz_thousands(tmp_path_factory: Any, case: tuple[str, bytes], data: Any) -> None:
    fmt, blob = case
    sub = data.draw(st.integers(0, 19)) == 0  # one case in 20 through a real subprocess
    check_case(tmp_path_factory.mktemp("f"), blob, fmt, _model(data, fmt), subprocess_run=sub)
