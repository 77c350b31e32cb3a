"""Python keywords are the CLI's flags (issue 17): ``--time`` is ``time=``, ``--shrink-runs`` is
``shrink_runs=``, ``treadle shrink --runs`` is ``shrink(runs=...)``. Old names keep working with a
DeprecationWarning that names the new keyword."""

from __future__ import annotations

import argparse
import inspect
import warnings

import pytest

import treadle
import treadle.hypothesis as th
from treadle.campaign import campaign, triage
from treadle.cli import build_parser
from treadle.runner import explore

# flags that have no Python keyword of the same name, and why
CLI_ONLY = {
    "json",  # Python returns the result object
    "executor",  # the CLI names an executor kind; Python takes any concurrent.futures.Executor
    "dask_address",  # ... such as a Dask client's get_executor()
    "html",  # a page is written by treadle.study, not by the check or replay itself
    "history",  # ReplayResult.history is the history
    "trace",  # Python takes the Trace (or, for replay, its path) as the first argument
    "system",
    "files",  # check_history takes the events
    "format",  # the events are already read: treadle.codecs reads every format
}
# names a keyword must not have (the synonyms of a flag that this API once used)
SYNONYMS = {"time_limit", "max_runs", "max_seconds", "max_attempts", "shrink_seconds", "db_path"}


def flags(command: str) -> set[str]:
    sub = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices[command]
    return {a.dest for a in sub._actions if a.option_strings and a.dest != "help"}


def keywords(function) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(function).parameters)


@pytest.mark.parametrize(
    "command, function, also_cli_only",
    [
        ("explore", explore, set()),
        ("shrink", treadle.shrink, {"out", "in_place"}),  # returns the Trace; .save(path) writes it
        ("replay", treadle.replay, {"check_determinism"}),  # runner.check_determinism(trace)
        ("campaign", campaign, set()),
        ("triage", triage, set()),
        ("check", treadle.check_history, set()),
    ],
)
def test_every_flag_is_the_keyword_of_the_same_name(command, function, also_cli_only):
    params = keywords(function)
    missing = flags(command) - CLI_ONLY - also_cli_only - set(params)
    assert not missing, (
        f"treadle {command} flags without a {function.__name__}() keyword: {missing}"
    )
    # the only synonyms left are keyword-only, defaulting to "not given": deprecated aliases
    for name in SYNONYMS & set(params):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_the_exported_functions_use_no_synonym_but_as_a_deprecated_alias():
    checked = 0
    for name in treadle.__all__:
        obj = getattr(treadle, name)
        if not inspect.isfunction(obj):
            continue
        for kw in SYNONYMS & set(keywords(obj)):
            assert keywords(obj)[kw].kind is inspect.Parameter.KEYWORD_ONLY, (name, kw)
        checked += 1
    assert checked >= 8
    for function in (th.runs, th.check):
        assert not SYNONYMS & set(keywords(function))
    assert "steps" in keywords(th.runs) and "shrink_runs" in keywords(th.check)


def test_explore_old_names_warn_and_still_work():
    with pytest.warns(DeprecationWarning, match=r"time_limit=.*use time=.*--time"):
        old = explore("example", time_limit=5, runs=20, out=None)
    with pytest.warns(
        DeprecationWarning, match=r"shrink_seconds=.*use shrink_time=.*--shrink-time"
    ):
        old_raw = explore("example", bug="stale-read", runs=300, out=None, shrink_seconds=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        new = explore("example", time=5, runs=20, out=None)
        new_raw = explore("example", bug="stale-read", runs=300, out=None, shrink_time=0)
        shrunk = explore("example", bug="stale-read", runs=300, out=None, shrink_time=60)
    assert (old.runs, old.events) == (new.runs, new.events)
    # shrink_seconds=0 meant "don't shrink", as shrink_time=0 does
    assert old_raw.history_sha256 == new_raw.history_sha256 != shrunk.history_sha256
    assert old_raw.shrunk["steps"] == new_raw.shrunk["steps"] > shrunk.shrunk["steps"]
    with pytest.raises(TypeError, match="both time_limit= and time="):
        explore("example", time_limit=5, time=5, out=None)


def test_shrink_old_names_warn_and_give_the_same_trace(tmp_path):
    found = explore("example", bug="stale-read", runs=300, out=str(tmp_path), shrink_runs=0)
    system, raw = treadle.get_system("example"), treadle.load_trace(found.trace)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        new = treadle.shrink("example", raw, runs=60, time=120)  # a name, as explore takes
    with pytest.warns(DeprecationWarning, match=r"shrink\(max_runs=.*use runs=.*--runs"):
        by_max_runs = treadle.shrink(system, raw, max_runs=60, time=120)
    with pytest.warns(DeprecationWarning, match=r"max_seconds=.*use time=.*--time"):
        by_max_seconds = treadle.shrink(system, raw, runs=60, max_seconds=120)
    with pytest.warns(DeprecationWarning, match=r"max_attempts=.*use runs="):
        by_max_attempts = treadle.shrink(system, raw, max_attempts=60, time=120)
    assert new.dumps() == by_max_runs.dumps() == by_max_seconds.dumps() == by_max_attempts.dumps()
    assert new.extra["shrink"]["runs"] <= 60 and new.steps < raw.steps
    with pytest.raises(TypeError, match="both max_runs= and runs="):
        treadle.shrink(system, raw, runs=60, max_runs=60)


def test_campaign_and_triage_old_names_warn(tmp_path):
    db = str(tmp_path / "seeds.db")
    with pytest.warns(DeprecationWarning) as caught:
        r = campaign("example", runs=5, time_limit=30, db_path=db, out=None)
    messages = sorted(str(w.message) for w in caught)
    assert any("time_limit=" in m and "time=" in m for m in messages), messages
    assert any("db_path=" in m and "--db" in m for m in messages), messages
    assert r.runs == 5 and (tmp_path / "seeds.db").exists()  # the old name was honoured
    with pytest.warns(DeprecationWarning, match=r"triage\(db_path=.*use db="):
        t = triage(db_path=db)
    assert t.db == db
