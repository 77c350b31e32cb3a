"""The tutorial's tests: pytest's marker and fixture, and Hypothesis (docs/tutorial.md)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import treadle.hypothesis as th


# --- step 6: explorations as tests
@pytest.mark.treadle("register", runs=200)
def test_register_is_linearizable():
    pass  # the marker explores before the body: a violation fails the test


@pytest.mark.treadle("register", bug="read-one", runs=200, expect="violation")
def test_read_one_is_caught(treadle_result):
    assert treadle_result.violation.property == "linearizability"


def test_every_state_of_the_small_configuration(treadle_explore):
    result = treadle_explore("register", strategy="bfs")
    assert result.extra["complete"]


# --- step 7: Hypothesis draws the runs, shrinks failures, remembers them
@settings(max_examples=50, deadline=None)
@given(th.runs("register", config={"clients": st.integers(1, 3)}))
def test_any_run_is_linearizable(run):
    th.check(run)
