"""pytest plugin: ``--treadle-time`` scales exploration budgets in tests, and the ``treadle_explore``
fixture runs an exploration that fails the test with the replay command. Failing traces are saved
under ``.treadle/traces/`` (in the directory pytest runs in), like every exploration's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("treadle")
    group.addoption(
        "--treadle-time",
        default=None,
        help="wall-time budget (s, > 0) for each treadle_explore call",
    )


def _budget(config: pytest.Config) -> float | None:
    from treadle.budgets import BudgetError, positive_seconds

    raw = config.getoption("--treadle-time")
    if raw is None:
        return None
    try:
        return positive_seconds("--treadle-time", float(raw))
    except ValueError:
        raise pytest.UsageError(
            f"--treadle-time must be a positive finite number of seconds, got {raw!r}"
        ) from None
    except BudgetError as e:  # pragma: no cover - BudgetError is a ValueError
        raise pytest.UsageError(str(e)) from None


def pytest_configure(config: pytest.Config) -> None:
    _budget(config)  # a bad budget stops the session before any test runs


@pytest.fixture
def treadle_explore(request: pytest.FixtureRequest) -> Callable[..., Any]:
    from treadle.runner import explore

    budget = _budget(request.config)

    def run(system: Any, **kwargs: Any) -> Any:
        if budget is not None:
            kwargs["time_limit"] = budget
        result = explore(system, **kwargs)
        result.assert_ok()
        return result

    return run
