"""Every command takes --json and prints exactly one JSON object on stdout; `python -m treadle`
is the same command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from treadle.cli import main

ROOT = Path(__file__).resolve().parents[1]
TRACE = str(next((ROOT / "histories" / "example").glob("*.json")))


def one_object(capsys, *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    obj = json.loads(out)  # the whole of stdout is one JSON document ...
    assert isinstance(obj, dict)  # ... and it is an object
    return code, obj


def test_python_dash_m_treadle_is_the_command():
    p = subprocess.run(
        [sys.executable, "-m", "treadle", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "raft" in {s["name"] for s in json.loads(p.stdout)["systems"]}
    p = subprocess.run(
        [sys.executable, "-m", "treadle", "explore", "nope"], capture_output=True, text=True
    )
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "unknown system" in p.stderr


def test_list_explore_replay_shrink_show_check_json(capsys, tmp_path):
    code, obj = one_object(capsys, "list", "--json")
    assert code == 0 and obj["strategies"]
    code, obj = one_object(capsys, "list", "example", "--json")
    assert code == 0 and obj["system"] == "example"
    code, obj = one_object(capsys, "explore", "example", "--runs", "3", "--json")
    assert code == 0 and obj["verdict"] == "ok" and obj["runs"] == 3
    code, obj = one_object(capsys, "replay", TRACE, "--json")
    assert code == 1 and obj["verdict"] == "violation" and obj["reproduces_recorded_violation"]
    small = tmp_path / "small.json"
    code, obj = one_object(capsys, "shrink", TRACE, "--out", str(small), "--runs", "50", "--json")
    assert code == 1 and obj["verdict"] == "violation" and small.exists()
    # show --json prints the timeline as data
    code, obj = one_object(capsys, "show", TRACE, "--json")
    assert code == 0 and obj
    hist = tmp_path / "h.jsonl"
    main(["replay", TRACE, "--history", str(hist)])
    capsys.readouterr()
    code, obj = one_object(capsys, "check", str(hist), "--model", "cas-register", "--json")
    assert code == 1 and obj["results"][0]["verdict"] == "violation"


def test_campaign_and_triage_json(capsys, tmp_path):
    db = str(tmp_path / "seeds.db")
    code, obj = one_object(
        capsys, "campaign", "example", "--runs", "3", "--db", db, "--workers", "1", "--json"
    )
    assert code == 0 and obj["verdict"] == "ok" and obj["runs"] == 3
    code, obj = one_object(capsys, "triage", "--db", db, "--json")
    assert code in (0, 1, 3) and isinstance(obj["items"], list) and obj["verdict"]


def test_json_fields_are_documented():
    doc = (ROOT / "docs" / "json.md").read_text()
    from treadle.cli import COMMANDS

    for name in COMMANDS:
        assert f"`treadle {name}" in doc, f"docs/json.md does not document {name} --json"


def test_prove_json_pbft(capsys):
    code, obj = one_object(capsys, "prove", "pbft", "--json")
    assert code == 0 and obj["verdict"] == "proved" and obj["n"] == 4
    by_name = {p["name"]: p for p in obj["proofs"]}
    assert by_name["for all f >= 1, quorums of 2f+1"]["holds"] is True
    wrong = by_name["concrete n=4 quorums of 2f=2 (wrong threshold)"]
    assert wrong["holds"] is False and wrong["expected"] is False
    assert not set(wrong["counterexample"]["shared"]) - set(wrong["counterexample"]["faulty"])
    # --json before the target works too; a wrong threshold is a counterexample, exit 1
    code, obj = one_object(capsys, "prove", "--json", "pbft", "--threshold", "2")
    assert code == 1 and obj["verdict"] == "counterexample"
    assert obj["proofs"][0]["counterexample"]["threshold"] == 2


def test_prove_json_breaker(capsys):
    code, obj = one_object(capsys, "prove", "breaker", "--k", "4", "--json")
    assert code == 0 and obj["verdict"] == "proved" and obj["results"][0]["holds"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["prove", "pbft", "--bogus"], "unrecognized arguments: --bogus"),
        (["prove", "pbft", "--f", "0"], "--f must be >= 1"),
        (["prove", "pbft", "--threshold", "9"], "--threshold must be in [1, 4]"),
        (["prove", "breaker", "--k", "x"], "argument --k: invalid int value"),
        (["prove", "nothing"], "nothing to prove"),
    ],
)
def test_prove_usage_errors_are_one_line(capsys, argv, message):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and err.count("\n") == 1
