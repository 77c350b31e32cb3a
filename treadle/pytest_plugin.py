"""treadle's pytest plugin (registered under ``pytest11``: installing treadle enables it).

What it adds:

* **Options** that bound the whole session: ``--treadle-time SECONDS`` and ``--treadle-runs N``
  cap every exploration (the fixture, the marker, and direct :func:`treadle.explore` calls);
  ``--treadle-seed N`` is the base seed of every exploration that does not pass one;
  ``--treadle-replay TRACE`` makes the explorations of the trace's system replay that trace
  instead of exploring (rerun one failure under the debugger, ``pytest --pdb``).
* **The marker** ``@pytest.mark.treadle(system, bug=None, *, strategy="mixed", runs=None,
  steps=None, time=None, seed=None, config=None, expect="ok")``: the marked test explores
  ``system`` before its body runs and fails unless the verdict is ``expect`` (``"ok"``: no
  violation; ``"violation"``: a seeded bug must be found). A test that asks for the
  ``treadle_result`` fixture gets the :class:`~treadle.ExploreResult`.
* **The fixture** ``treadle_explore(system, bug=None, *, expect="ok", **explore_kwargs)``:
  call it to explore; keywords are :func:`treadle.explore`'s (``strategy``, ``runs``,
  ``steps``, ``time``, ``seed``, ``config``, ...). It returns the result and fails the test
  unless the verdict is ``expect``.
* **Regression corpus in one line**: ``test_traces = treadle_trace_tests("histories")`` in a test
  module replays every trace under the folder (byte for byte, the recorded violation must
  still reproduce); :func:`parametrize_traces` gives the bare ``pytest.mark.parametrize`` for
  custom checks.
* Failing traces are kept in ``.treadle/traces/<system>/`` under pytest's rootdir (never in
  ``tmp_path``, which pytest deletes), and the failure message carries both replay commands:
  ``treadle replay TRACE`` and ``pytest --treadle-replay TRACE NODEID``.
* The report header names treadle's version, the systems found and the session's caps.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

EXPECT = ("ok", "violation")


# ---------------------------------------------------------------------------------------- options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("treadle")
    group.addoption(
        "--treadle-time",
        default=None,
        metavar="SECONDS",
        help="cap every treadle exploration in the session at this wall time (s, > 0)",
    )
    group.addoption(
        "--treadle-runs",
        default=None,
        metavar="N",
        help="cap every treadle exploration in the session at N runs (> 0)",
    )
    group.addoption(
        "--treadle-seed",
        default=None,
        metavar="N",
        help="base seed of every treadle exploration that does not pass its own",
    )
    group.addoption(
        "--treadle-replay",
        default=None,
        metavar="TRACE",
        help="explorations of the trace's system replay TRACE instead of exploring",
    )


def _option(config: pytest.Config, name: str, parse: Callable[[str], Any], what: str) -> Any:
    from treadle.budgets import BudgetError

    raw = config.getoption(name)
    if raw is None:
        return None
    try:
        return parse(raw)
    except (ValueError, BudgetError):
        raise pytest.UsageError(f"{name} must be {what}, got {raw!r}") from None


def _caps(config: pytest.Config) -> tuple[int | None, float | None, int | None]:
    from treadle.budgets import positive_int, positive_seconds

    time = _option(
        config,
        "--treadle-time",
        lambda s: positive_seconds("--treadle-time", float(s)),
        "a positive finite number of seconds",
    )
    runs = _option(
        config,
        "--treadle-runs",
        lambda s: positive_int("--treadle-runs", int(s)),
        "a positive integer",
    )
    seed = _option(config, "--treadle-seed", int, "an integer")
    return runs, time, seed


def _replay_trace(config: pytest.Config) -> Any:
    path = config.getoption("--treadle-replay")
    if path is None:
        return None
    from treadle.errors import TreadleError
    from treadle.trace import load_trace

    try:
        return path, load_trace(path)
    except TreadleError as e:
        raise pytest.UsageError(f"--treadle-replay: {e}") from None
    except OSError as e:
        raise pytest.UsageError(f"--treadle-replay {path}: {e.strerror}") from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "treadle(system, bug=None, *, strategy='mixed', runs=None, steps=None, time=None, "
        "seed=None, config=None, expect='ok'): explore SYSTEM before the test body; the test "
        "fails unless the verdict is EXPECT",
    )
    from treadle.session import set_caps

    runs, time, seed = _caps(config)  # a bad value stops the session before any test runs
    _replay_trace(config)
    set_caps(runs=runs, time=time, seed=seed)


def pytest_unconfigure(config: pytest.Config) -> None:
    from treadle.session import set_caps

    set_caps()


def pytest_report_header(config: pytest.Config) -> list[str]:
    import treadle
    from treadle.system import all_systems, broken_systems

    names = sorted(all_systems())
    broken = sorted(broken_systems())
    lines = [
        f"treadle {treadle.__version__}: systems "
        + (", ".join(names) or "none")
        + (f" (failed to load: {', '.join(broken)})" if broken else "")
    ]
    runs, time, seed = _caps(config)
    caps = [
        f"{k}={v}" for k, v in (("runs", runs), ("time", time), ("seed", seed)) if v is not None
    ]
    replay = config.getoption("--treadle-replay")
    if replay:
        caps.append(f"replay={replay}")
    if caps:
        lines.append("treadle caps: " + ", ".join(caps))
    return lines


# ---------------------------------------------------------------------------------------- exploring
def traces_dir(config: pytest.Config) -> str:
    """``.treadle/traces`` under pytest's rootdir (relative to the working directory when it is
    inside it, so the printed replay command is short)."""
    out = Path(config.rootpath) / ".treadle" / "traces"
    try:
        return os.path.relpath(out) if out.resolve().is_relative_to(Path.cwd()) else str(out)
    except ValueError:  # another drive
        return str(out)


def _explore_for_test(
    request: pytest.FixtureRequest,
    system: Any,
    bug: str | None = None,
    *,
    expect: str = "ok",
    allow_incomplete: bool = False,
    **kwargs: Any,
) -> Any:
    __tracebackhide__ = True
    import treadle
    from treadle.system import get_system

    if expect not in EXPECT:
        raise ValueError(f"expect must be one of {', '.join(EXPECT)}, got {expect!r}")
    sys_obj = get_system(system) if isinstance(system, str) else system
    kwargs.setdefault("out", traces_dir(request.config))
    replay = _replay_trace(request.config)
    if replay is not None and replay[1].system == sys_obj.name:
        result = _replayed(replay[0])
    else:
        result = treadle.explore(sys_obj, bug=bug, **kwargs)
    _judge(result, expect, allow_incomplete, request.node.nodeid)
    return result


def _replayed(path: str) -> Any:
    """One exploration from a trace: replay it, report as an exploration of one run."""
    from treadle.outcome import ExploreResult, replay_command
    from treadle.runner import replay

    r = replay(path)
    v = r.run.violation
    verdict = "violation" if v else ("unknown" if r.run.unknown else "ok")
    return ExploreResult(
        verdict,
        r.trace.system,
        r.trace.bug,
        r.trace.strategy or "replay",
        r.trace.seed,
        1,
        len(r.run.history),
        r.run.steps,
        0.0,
        (r.trace.seed, r.trace.seed),
        violation=v,
        trace=path if v else None,
        replay=replay_command(path) if v else None,
        history_sha256=r.history_sha256,
        note=r.run.unknown.message if verdict == "unknown" and r.run.unknown else None,
    )


def _judge(result: Any, expect: str, allow_incomplete: bool, nodeid: str) -> None:
    __tracebackhide__ = True
    if expect == "violation":
        if result.verdict != "violation":
            raise AssertionError(
                f"expected a violation of {result.system}"
                + (f" with bug {result.bug}" if result.bug else "")
                + f", found none: {result.summary()}"
            )
        return
    if result.verdict == "violation":
        raise AssertionError(
            f"{result.summary()}\nrerun this test from the trace: "
            f"pytest --treadle-replay {result.trace} {nodeid}"
        )
    result.assert_ok(allow_incomplete=allow_incomplete)


@pytest.fixture
def treadle_explore(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``treadle_explore(system, bug=None, *, expect="ok", allow_incomplete=False,
    **explore_kwargs) -> ExploreResult``.

    ``system``: a registered name or a :class:`~treadle.System`; ``explore_kwargs`` are
    :func:`treadle.explore`'s (``strategy``, ``runs``, ``steps``, ``time``, ``seed``,
    ``config``, ...). Fails the test unless the verdict is ``expect``: ``"ok"`` (no violation,
    something was explored, an exhaustive search was complete unless ``allow_incomplete``) or
    ``"violation"``. A violation's trace is kept under ``.treadle/traces/`` and the failure
    message carries the replay commands."""

    def run(system: Any, bug: str | None = None, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        return _explore_for_test(request, system, bug, **kwargs)

    return run


@pytest.fixture
def treadle_result(request: pytest.FixtureRequest) -> Any:
    """The :class:`~treadle.ExploreResult` of the test's ``@pytest.mark.treadle`` exploration
    (run in the test's call phase, so a violation is a failed test, not a setup error)."""
    if request.node.get_closest_marker("treadle") is None:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the treadle_result fixture needs "
            '@pytest.mark.treadle(SYSTEM, ...), e.g. @pytest.mark.treadle("raft", runs=50)'
        )
    return _PENDING


#: what ``treadle_result`` holds until the marked exploration has run
_PENDING = object()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> None:
    marker = pyfuncitem.get_closest_marker("treadle")
    if marker is None:
        return None
    __tracebackhide__ = True
    if not marker.args:
        raise pytest.UsageError(
            f"{pyfuncitem.nodeid}: @pytest.mark.treadle needs the system: "
            '@pytest.mark.treadle("raft", bug=None, runs=50)'
        )
    result = _explore_for_test(pyfuncitem._request, *marker.args, **marker.kwargs)
    if "treadle_result" in pyfuncitem.funcargs:
        pyfuncitem.funcargs["treadle_result"] = result
    return None  # pytest calls the test body with the result


# ---------------------------------------------------------------------------------------- corpus
def trace_paths(folder: str | os.PathLike[str], system: str | None = None) -> list[Path]:
    """Every trace (``*.json``) under ``folder``, sorted; only ``system``'s if given."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of traces")
    paths = sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))
    if system is not None:
        from treadle.trace import load_trace

        paths = [p for p in paths if load_trace(str(p)).system == system]
    return paths


def parametrize_traces(
    folder: str | os.PathLike[str], system: str | None = None, argname: str = "trace"
) -> Any:
    """``@parametrize_traces("histories")``: run the test once per trace under the folder, with
    the trace's path as ``argname`` (test ids are the paths relative to the folder). A folder
    without traces is an error, not zero passing tests."""
    root = Path(folder)
    paths = trace_paths(root, system)
    if not paths:
        raise FileNotFoundError(f"{root}: no traces (*.json) found")
    return pytest.mark.parametrize(
        argname, [str(p) for p in paths], ids=[str(p.relative_to(root)) for p in paths]
    )


def check_trace(path: str) -> Any:
    """Replay ``path``: the history must match the recorded digest byte for byte and a recorded
    violation must still reproduce (same property). Returns the replay; fails the test
    otherwise."""
    __tracebackhide__ = True
    from treadle.errors import TreadleError
    from treadle.runner import replay

    try:
        r = replay(path)
    except TreadleError as e:
        raise AssertionError(f"{path}: {e}") from None
    recorded = r.trace.violation
    if recorded is not None:
        got = r.run.violation
        if got is None or got.property != recorded["property"]:
            raise AssertionError(
                f"{path}: the recorded violation of {recorded['property']} no longer "
                f"reproduces (replay gives {got.property if got else 'no violation'}); "
                f"treadle replay {path}"
            )
    return r


def treadle_trace_tests(
    folder: str | os.PathLike[str], system: str | None = None
) -> Callable[[str], None]:
    """A test function that replays every trace under ``folder`` (see :func:`check_trace`)::

        test_regressions = treadle_trace_tests("histories")

    A relative ``folder`` is looked for in the working directory, then beside the calling test
    file and in each of its parent directories (so ``"histories"`` from ``tests/`` finds the
    repository's corpus)."""

    @parametrize_traces(_find_folder(folder, inspect.stack()[1].filename), system)
    def test_trace_replays(trace: str) -> None:
        __tracebackhide__ = True
        check_trace(trace)

    return test_trace_replays


def _find_folder(folder: str | os.PathLike[str], caller: str) -> Path:
    p = Path(folder)
    if p.is_absolute() or p.is_dir():
        return p
    for d in Path(caller).resolve().parents:
        if (d / p).is_dir():
            return d / p
    return p  # parametrize_traces says it is missing
