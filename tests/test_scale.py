"""Exploration on workers: the same seeds give the same result in one process, on a process pool
and on a Dask cluster; a worker that dies loses no run; Ctrl-C keeps exact counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tally_system

import treadle
from treadle.cli import main
from treadle.parallel import RunSpec, SeedRuns
from treadle.system import register

register(tally_system.system)

#: what must not differ between a serial and a parallel exploration
SAME = ("verdict", "seed", "seeds", "runs", "events", "steps", "violation", "history_sha256")


def _same(r) -> dict:
    d = r.to_json()
    out = {k: d[k] for k in SAME}
    if r.shrunk:
        out["shrunk"] = {k: v for k, v in r.shrunk.items() if "time" not in k and "second" not in k}
    return out


def _explore(tmp_path, name, **kw):
    out = tmp_path / name
    return treadle.explore(out=str(out), **kw)


def test_two_workers_report_the_serial_violation_and_a_byte_identical_trace(tmp_path):
    kw = dict(system="example", bug="stale-read", runs=200, shrink_runs=300, shrink_time=120)
    one = _explore(tmp_path, "one", workers=1, **kw)
    two = _explore(tmp_path, "two", workers=2, **kw)
    assert one.verdict == "violation"
    assert _same(two) == _same(one)
    with open(one.trace, "rb") as a, open(two.trace, "rb") as b:
        assert a.read() == b.read()
    assert two.extra["parallel"]["workers"] == 2
    assert "parallel" not in one.extra


def test_the_reported_seed_is_the_lowest_violating_one():
    # a system where about half the seeds fail: which seed is lowest must not depend on which
    # worker finished first
    s = tally_system.system
    cfg = s.resolve_config()
    spec = RunSpec({"name": "tally"}, cfg, None, "mixed", s.steps)
    with SeedRuns(s, spec, 0, 40, None, stop_at_violation=False) as src:
        violating = [r.seed for r in src if r.violation is not None]
    assert len(violating) >= 3, violating
    for start in (0, violating[0] + 1):
        r = treadle.explore("tally", seed=start, runs=40, workers=2, out=None, shrink_time=0)
        expected = min(v for v in violating if v >= start)
        assert r.verdict == "violation"
        assert r.seeds == (start, expected)
        assert r.runs == expected - start + 1


def test_no_violation_counts_match():
    one = treadle.explore("example", runs=60, workers=1, out=None)
    two = treadle.explore("example", runs=60, workers=2, out=None)
    assert one.verdict == "ok"
    assert _same(two) == _same(one)


def test_time_budget_every_reported_seed_reproduces_alone():
    r = treadle.explore("tally", seed=100, time=1.0, workers=2, out=None, shrink_time=0)
    assert r.verdict == "violation"
    first, last = r.seeds
    assert r.runs == last - first + 1  # the seeds reported are exactly the ones counted
    alone = treadle.explore("tally", seed=last, runs=1, workers=1, out=None, shrink_time=0)
    assert alone.verdict == "violation"
    assert alone.history_sha256 == r.history_sha256
    assert alone.violation.to_json() == r.violation.to_json()

    ok = treadle.explore("example", time=1.0, workers=2, out=None)
    assert ok.verdict == "ok" and ok.runs > 0
    assert ok.seeds == (0, ok.runs - 1)


def test_a_killed_worker_loses_no_run(tmp_path):
    marker = tmp_path / "kill-me"
    cfg = {"kill_marker": str(marker), "drop_rate": 0.0, "duplicate_rate": 0.0, "crash_rate": 0.0}
    serial = treadle.explore("tally", runs=30, config=cfg, workers=1, out=None)
    marker.write_text("a worker that builds a run while this exists kills itself\n")
    pooled = treadle.explore("tally", runs=30, config=cfg, workers=2, out=None)
    assert not marker.exists(), "no worker died: the test did not test anything"
    assert pooled.extra["parallel"]["worker_restarts"] >= 1
    assert serial.verdict == "ok"
    assert _same(pooled) == _same(serial)


def test_a_system_workers_cannot_import_is_refused_in_one_line():
    from treadle.errors import TreadleError
    from treadle.system import System

    local = System(name="local-only", description="", build=tally_system.build)
    with pytest.raises(TreadleError, match="cannot run on workers"):
        treadle.explore(local, runs=2, workers=2, out=None)


def test_cli_workers_json(capsys, tmp_path):
    code = main(
        ["explore", "example", "--runs", "40", "--workers", "2", "--json", "--out", str(tmp_path)]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["runs"] == 40 and data["seeds"] == [0, 39]
    assert data["parallel"]["workers"] == 2


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_on_workers_exits_130_with_exact_counts(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "treadle.cli", "explore", "raft", "--time", "60", "--workers", "2"]
        + ["--json", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C would reach
        # a foreground command's Ctrl-C: a shell starts background jobs (`pytest ... &`) with
        # SIGINT ignored, the child inherits that and Python then never raises
        # KeyboardInterrupt (the test failed, and the exploration ran its full minute)
        preexec_fn=_default_sigint,
    )
    time.sleep(4.0)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (err, out[:600])
    assert "Traceback" not in err
    data = json.loads(out)
    assert data["verdict"] == "interrupted" and data["interrupted"] is True
    assert data["runs"] > 0
    assert data["seeds"] == [0, data["runs"] - 1]


def test_dask_local_cluster_gives_the_serial_result(capsys, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    kw = dict(system="example", bug="stale-read", runs=200, shrink_runs=300, shrink_time=120)
    serial = _explore(tmp_path, "serial", workers=1, **kw)
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        with distributed.Client(cluster) as client:
            on_dask = _explore(tmp_path, "dask", executor=client.get_executor(pure=False), **kw)
            _bfs_on_dask_is_serial(client, monkeypatch)
        code = main(
            ["explore", "example", "--bug", "stale-read", "--runs", "200", "--shrink-runs", "300"]
            + ["--executor", "dask", "--dask-address", cluster.scheduler_address]
            + ["--json", "--out", str(tmp_path / "cli")]
        )
    assert _same(on_dask) == _same(serial)
    with open(serial.trace, "rb") as a, open(on_dask.trace, "rb") as b:
        assert a.read() == b.read()
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["history_sha256"] == serial.history_sha256
    assert data["parallel"]["executor"] == "ClientExecutor"


def _bfs_on_dask_is_serial(client, monkeypatch) -> None:
    """Exhaustive BFS on Dask workers (other processes, other hash seeds: fingerprints travel as
    they are; symmetric ones make the coordinator expand the states itself) is the serial BFS."""
    import treadle.exhaustive.workers as workers_mod

    monkeypatch.setattr(workers_mod, "LOCAL_STATES", 0)
    for name, bug in (
        ("eventstore", "replay-from-zero"),
        ("twophase", "commit-without-all-prepared"),
    ):
        kw = dict(bug=bug, strategy="bfs", out=None)
        one = treadle.explore(name, workers=1, **kw)
        dask = treadle.explore(name, executor=client.get_executor(pure=False), workers=2, **kw)
        keys = ("states", "transitions", "depth", "counterexample_steps", "history_checks")
        assert [dask.extra[k] for k in keys] == [one.extra[k] for k in keys]
        assert dask.history_sha256 == one.history_sha256 and one.verdict == "violation"
        assert dask.extra["parallel"]["states_on_workers"] > 0


def test_dask_executor_without_an_address_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("TREADLE_DASK_ADDRESS", raising=False)
    code = main(["explore", "example", "--runs", "2", "--executor", "dask"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--dask-address" in err
