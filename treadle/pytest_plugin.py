"""pytest plugin: ``--treadle-time`` scales exploration budgets in tests, and the ``treadle_explore``
fixture runs an exploration that fails the test with the replay command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("treadle")
    group.addoption(
        "--treadle-time",
        type=float,
        default=None,
        help="wall-time budget (s) for each treadle_explore call",
    )


@pytest.fixture
def treadle_explore(request: pytest.FixtureRequest, tmp_path: Any) -> Callable[..., Any]:
    from treadle.runner import explore

    budget = request.config.getoption("--treadle-time")

    def run(system: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("out", str(tmp_path))
        if budget is not None:
            kwargs["time_limit"] = budget
        result = explore(system, **kwargs)
        result.assert_ok()
        return result

    return run
