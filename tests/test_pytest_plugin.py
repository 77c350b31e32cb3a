"""The pytest plugin, as a user meets it: each test writes a small test project and runs pytest on
it in a subprocess (the session caps are process-wide, so the outer session must not see them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import treadle

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_TRACE = next((ROOT / "histories" / "example").glob("*.json"))


def run_pytest(project: Path, *args: str, files: dict[str, str]) -> subprocess.CompletedProcess:
    (project / "pytest.ini").write_text("[pytest]\n")
    for name, body in files.items():
        (project / name).write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_header_names_the_version_and_the_systems(tmp_path):
    p = run_pytest(
        tmp_path, "--treadle-runs", "3", files={"test_a.py": "def test_a():\n    pass\n"}
    )
    assert p.returncode == 0, p.stdout + p.stderr
    header = next(line for line in p.stdout.splitlines() if line.startswith("treadle "))
    assert header.startswith(f"treadle {treadle.__version__}: systems ")
    for name in ("example", "raft", "pbft", "twophase"):
        assert name in header
    assert "treadle caps: runs=3" in p.stdout


def test_session_caps_bound_direct_explore_calls_and_set_the_seed(tmp_path):
    body = """
        import treadle

        def test_runs_are_capped():
            r = treadle.explore("example", runs=50, out=None)
            assert r.runs == 3 and r.seed == 7

        def test_default_runs_are_capped_too():
            assert treadle.explore("example", out=None).runs == 3

        def test_an_own_seed_wins():
            assert treadle.explore("example", seed=2, out=None).seeds == (2, 4)

        def test_the_fixture_is_capped(treadle_explore):
            assert treadle_explore("example", runs=40).runs == 3
    """
    p = run_pytest(
        tmp_path, "--treadle-runs", "3", "--treadle-seed", "7", files={"test_caps.py": body}
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "4 passed" in p.stdout


def test_time_cap_bounds_runs(tmp_path):
    # 10**6 runs of the example take far longer than the cap: only the cap can stop it
    body = """
        import treadle

        def test_time_capped():
            r = treadle.explore("example", runs=10**6, out=None)
            assert r.verdict == "ok" and 1 <= r.runs < 10**6
            print("RUNS", r.runs)
    """
    p = run_pytest(tmp_path, "--treadle-time", "0.5", "-s", files={"test_t.py": body})
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--treadle-runs", "0"], "--treadle-runs must be a positive integer"),
        (["--treadle-runs", "x"], "--treadle-runs must be a positive integer"),
        (["--treadle-seed", "1.5"], "--treadle-seed must be an integer"),
        (["--treadle-replay", "missing.json"], "--treadle-replay"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path, args, message):
    p = run_pytest(tmp_path, *args, files={"test_a.py": "def test_a():\n    pass\n"})
    assert p.returncode == 4, p.stdout + p.stderr  # pytest's usage error
    assert message in p.stderr
    assert "Traceback" not in p.stderr


MARKED = """
    import pytest

    @pytest.mark.treadle("example", bug="stale-read", runs=300, expect="violation", shrink_runs=100)
    def test_the_seeded_bug_is_found(treadle_result):
        assert treadle_result.violation.property == "linearizability"

    @pytest.mark.treadle("example", runs=5)
    def test_no_bug_no_violation():
        pass

    @pytest.mark.treadle("example", bug="stale-read", runs=300, shrink_runs=100)
    def test_marked_fails():
        pass
"""


def test_marker_fixture_traces_and_replay(tmp_path):
    p = run_pytest(tmp_path, files={"test_marked.py": MARKED})
    assert p.returncode == 1, p.stdout + p.stderr
    assert "2 passed" in p.stdout and "1 failed" in p.stdout
    assert "FAILED test_marked.py::test_marked_fails" in p.stdout
    # the trace is kept in .treadle/traces/ under the rootdir, with its .gitignore
    traces = sorted((tmp_path / ".treadle" / "traces" / "example").glob("*.json"))
    assert traces and (tmp_path / ".treadle" / ".gitignore").exists()
    failing = [t for t in traces if str(t.relative_to(tmp_path)) in p.stdout]
    assert len(failing) == 1, p.stdout
    trace = str(failing[0].relative_to(tmp_path))
    assert f"treadle replay {trace}" in p.stdout
    assert f"pytest --treadle-replay {trace} test_marked.py::test_marked_fails" in p.stdout

    # the printed command reruns that one exploration from the trace: one run, same violation
    body = textwrap.dedent(MARKED) + textwrap.dedent(
        """
        @pytest.mark.treadle("example", bug="stale-read", runs=300, expect="violation", shrink_runs=100)
        def test_replayed(treadle_result):
            assert treadle_result.runs == 1 and treadle_result.strategy == "mixed"
            print("SHA", treadle_result.history_sha256)
        """
    )
    p2 = run_pytest(
        tmp_path,
        "-s",
        "--treadle-replay",
        trace,
        "test_marked.py::test_marked_fails",
        "test_marked.py::test_replayed",
        files={"test_marked.py": body},
    )
    assert p2.returncode == 1, p2.stdout + p2.stderr
    assert "1 passed" in p2.stdout and "1 failed" in p2.stdout
    recorded = json.loads(failing[0].read_text())["history_sha256"]
    assert f"SHA {recorded}" in p2.stdout
    assert "violation of linearizability" in p2.stdout


def test_fixture_documented_signature(tmp_path):
    body = """
        import pytest

        def test_expect_violation(treadle_explore):
            r = treadle_explore("example", "stale-read", runs=300, expect="violation",
                                shrink_runs=50)
            assert r.trace and r.trace.startswith(".treadle/traces/example/")

        def test_expect_violation_but_none(treadle_explore):
            with pytest.raises(AssertionError, match="expected a violation of example, found none"):
                treadle_explore("example", runs=3, expect="violation")

        def test_bad_expect(treadle_explore):
            with pytest.raises(ValueError, match="expect must be one of ok, violation"):
                treadle_explore("example", runs=3, expect="maybe")

        def test_incomplete_exhaustive_fails_unless_allowed(treadle_explore):
            with pytest.raises(AssertionError, match="exhaustive search incomplete"):
                treadle_explore("twophase", strategy="bfs", config={"max_depth": 2})
            r = treadle_explore(
                "twophase", strategy="bfs", config={"max_depth": 2}, allow_incomplete=True
            )
            assert r.extra["complete"] is False
    """
    p = run_pytest(tmp_path, files={"test_fx.py": body})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "4 passed" in p.stdout


def test_a_folder_of_traces_is_a_regression_suite_in_one_line(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "example").mkdir(parents=True)
    shutil.copy(EXAMPLE_TRACE, corpus / "example" / "good.json")
    bad = json.loads(EXAMPLE_TRACE.read_text())
    bad["choices"] = [0] * 5  # a trace that no longer shows its violation
    bad.pop("history_sha256", None)
    (corpus / "example" / "stale.json").write_text(json.dumps(bad))
    files = {
        "test_regress.py": """
            from treadle.pytest_plugin import treadle_trace_tests

            test_corpus = treadle_trace_tests("corpus")
        """
    }
    p = run_pytest(tmp_path, files=files)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "PASSED test_regress.py::test_corpus[example/good.json]" in p.stdout
    assert "FAILED test_regress.py::test_corpus[example/stale.json]" in p.stdout
    assert "no longer reproduces" in p.stdout
    # an empty or missing folder is a collection error, never zero passing tests
    shutil.rmtree(corpus)
    p = run_pytest(tmp_path, files=files)
    assert p.returncode != 0 and "no such folder of traces" in p.stdout


def test_the_repository_corpus_through_the_helper():
    from treadle.pytest_plugin import parametrize_traces, trace_paths

    paths = trace_paths(ROOT / "histories")
    assert len(paths) >= 10
    mark = parametrize_traces(ROOT / "histories", system="example")
    assert mark.args[0] == "trace" and all("example" in p for p in mark.args[1])
