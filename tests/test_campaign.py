"""Campaigns and triage: every failure recorded in the seed database by signature; triage says
still failing, fixed (after the code is fixed), regressed (the bug came back) and new."""

from __future__ import annotations

import json
import sqlite3

import pytest
import tally_system
from treadle.checkers.result import CheckResult

from treadle.campaign import campaign, triage
from treadle.cli import main
from treadle.seeds import SeedDB, signature
from treadle.system import register
from treadle.trace import load_trace

register(tally_system.system)

#: no lost or duplicated messages: the only failures are lost totals after a crash
CRASHES_ONLY = {"drop_rate": 0.0, "duplicate_rate": 0.0}


@pytest.fixture
def code(monkeypatch):
    """The tally system's code switches, restored after the test."""
    for name in ("DEDUP", "DURABLE", "RESTART_RAISES"):
        monkeypatch.setattr(tally_system, name, getattr(tally_system, name))
    return tally_system


def test_signature_ignores_values_that_vary_by_seed():
    a = CheckResult.violation("Election Safety", "x", term=3, leaders=["n1", "n2"], step=10)
    b = CheckResult.violation("Election Safety", "y", term=7, leaders=["n2", "n3"], step=99)
    c = CheckResult.violation("Election Safety", "z", term=7, index=4, nodes=["n2", "n3"])
    d = CheckResult.violation("Log Matching", "x", term=3, leaders=["n1", "n2"])
    assert signature(a)[0] == signature(b)[0]
    assert len({signature(x)[0] for x in (a, c, d)}) == 3
    e1 = CheckResult.violation(
        "handler exception",
        "m",
        exception="KeyError",
        exception_message="'k1'",
        node="n1",
        frame={"file": "node.py", "line": 10, "function": "on_message"},
    )
    e2 = CheckResult.violation(
        "handler exception",
        "m",
        exception="KeyError",
        exception_message="'k9'",
        node="n3",
        frame={"file": "node.py", "line": 12, "function": "on_message"},
    )
    e3 = CheckResult.violation(
        "handler exception",
        "m",
        exception="ZeroDivisionError",
        node="n1",
        frame={"file": "node.py", "line": 10, "function": "on_message"},
    )
    assert signature(e1)[0] == signature(e2)[0] != signature(e3)[0]
    assert "KeyError" in signature(e1)[1] and "on_message" in signature(e1)[1]


def test_campaign_then_triage_new_still_failing_fixed_regressed(tmp_path, code):
    db = str(tmp_path / "seeds.db")
    out = str(tmp_path / "traces")
    r = campaign("tally", runs=60, config=CRASHES_ONLY, workers=2, db=db, out=out)
    assert r.verdict == "violation" and r.runs == 60 and r.seeds == (0, 59)
    assert r.faults.get("crash", 0) > 0 and r.faults.get("restart", 0) > 0
    assert "drop" not in r.faults  # the config allows none
    assert r.coverage.get("applied") == 60  # every run applied something
    assert [g.property for g in r.failures] == ["Durability"]
    group = r.failures[0]
    assert group.status == "new" and group.runs == r.failing_runs > 0
    trace = load_trace(group.trace)  # the first failing seed's trace, replayable
    assert trace.seed == group.seeds[0] and trace.strategy == "swarm"
    assert main(["replay", group.trace, "--json"]) == 1

    # the same failures again: known, not new; the next campaign starts after the last
    again = campaign("tally", runs=40, config=CRASHES_ONLY, db=db, out=out)
    assert again.seeds == (60, 99)
    assert [g.status for g in again.failures] == ["known"]
    with SeedDB(db) as sdb:
        [row] = sdb.failures("tally")
        assert row.occurrences == r.failing_runs + again.failing_runs
        assert row.seed == group.seeds[0] and row.first_seen <= row.last_seen
        assert len(sdb.seeds_of(row.id)) == row.occurrences

    t = triage(db)
    assert t.verdict == "violation"
    assert [(i.status, i.property) for i in t.items] == [("still failing", "Durability")]

    code.DURABLE = True  # the fix
    t = triage(db)
    assert t.verdict == "ok"
    assert [i.status for i in t.items] == ["fixed"]

    code.DURABLE = False  # the bug comes back
    t = triage(db)
    assert [i.status for i in t.items] == ["regressed"]
    assert t.verdict == "violation"

    # a fix that makes restarts raise: the old failure is gone, a new one appears
    code.DURABLE, code.RESTART_RAISES = True, True
    t = triage(db)
    statuses = {i.status: i for i in t.items}
    assert set(statuses) == {"fixed", "new"}
    assert statuses["new"].property == "handler exception"
    assert "RuntimeError" in statuses["new"].summary
    assert "now fail otherwise" in (statuses["fixed"].note or "")
    with SeedDB(db) as sdb:
        assert {f.property for f in sdb.failures()} == {"Durability", "handler exception"}


def test_campaign_and_triage_cli_json(tmp_path, capsys, code):
    db = str(tmp_path / "s.db")
    argv = ["campaign", "tally", "--runs", "30", "--workers", "1", "--db", db, "--json"]
    code_ = main(argv + ["--out", str(tmp_path / "t")])
    data = json.loads(capsys.readouterr().out)
    assert code_ == 1 and data["verdict"] == "violation"
    assert data["runs"] == 30 and data["failing_runs"] == sum(g["runs"] for g in data["failures"])
    assert all(g["status"] == "new" for g in data["failures"])
    assert {"faults", "coverage", "events"} <= set(data)
    assert main(["triage", "--db", db, "--json"]) == 1
    tri = json.loads(capsys.readouterr().out)
    assert {i["status"] for i in tri["items"]} == {"still failing"}
    code.DEDUP = code.DURABLE = True
    assert main(["triage", "--db", db, "--json"]) == 0
    tri = json.loads(capsys.readouterr().out)
    assert {i["status"] for i in tri["items"]} == {"fixed"}
    assert tri["counts"] == {"fixed": len(data["failures"])}


def test_triage_without_a_database_is_unknown_and_writes_nothing(tmp_path, capsys):
    db = tmp_path / "none.db"
    assert main(["triage", "--db", str(db), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["verdict"] == "unknown"
    assert not db.exists()


def test_a_file_that_is_not_a_seed_database_is_refused_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.db"
    bad.write_text("not sqlite\n" * 100)
    assert main(["triage", "--db", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.db" in err[0]


def test_database_schema_is_plain_sqlite(tmp_path):
    db = str(tmp_path / "seeds.db")
    campaign("tally", runs=20, config=CRASHES_ONLY, db=db, out=None)
    conn = sqlite3.connect(db)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(failures)")]
    for c in (
        "system",
        "system_version",
        "property",
        "signature",
        "seed",
        "config",
        "trace",
        "first_seen",
        "last_seen",
        "status",
    ):
        assert c in cols
    conn.close()


def test_campaign_reports_sometimes_assertions_reached_and_never_reached(tmp_path):
    import lock_system

    from treadle.system import register

    register(lock_system.system)
    r = campaign(
        "lock", runs=30, config={"stages": 3}, db=str(tmp_path / "s.db"), out=str(tmp_path)
    )
    some = r.to_json()["sometimes"]
    assert some["reached"]["lock: stage 1"]["runs"] >= 1
    assert "lock: never" in some["never_reached"]  # evaluated, never true
    assert "lock: stage 9" in some["never_reached"]  # declared, never evaluated


def test_fates_the_configuration_does_not_allow_are_not_counted_as_faults():
    """A mutated choice list may ask for a drop where drop_rate is 0: the world delivers the
    message, and the campaign report must not count a drop that never happened."""
    from treadle.parallel import _CountingRecorder
    from treadle.strategies import Strategy

    class AlwaysDrop(Strategy):
        def choose(self, kind, n, options=None):
            return 1 if kind == "fate" else 0

    class AlwaysDuplicate(Strategy):
        def choose(self, kind, n, options=None):
            return 2 if kind == "fate" else 0

    for inner, cfg, drops, dups in [
        (AlwaysDrop(), {"drop_rate": 0.0, "duplicate_rate": 0.1}, 0, 0),
        (AlwaysDrop(), {"drop_rate": 0.1, "duplicate_rate": 0.0}, 3, 0),
        (AlwaysDuplicate(), {"drop_rate": 0.1, "duplicate_rate": 0.0}, 0, 0),
        (AlwaysDuplicate(), {"drop_rate": 0.0, "duplicate_rate": 0.1}, 0, 3),
    ]:
        rec = _CountingRecorder(inner, cfg)
        for _ in range(3):
            rec.choose("fate", 3)
        assert (rec.drops, rec.duplicates) == (drops, dups), cfg
        assert rec.choices == [inner.choose("fate", 3)] * 3  # the choices are recorded as made
