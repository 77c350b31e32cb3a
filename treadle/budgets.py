"""Exploration budgets: how many runs, how many steps per run, how much wall time.

An empty budget explores nothing, and "no violation" after exploring nothing would be a false
success, so every budget is checked before anything runs: ``runs`` and ``steps`` are positive
integers, ``time`` a positive finite number of seconds. The same rules hold for the CLI
(``--runs``/``--steps``/``--time``), the Python API and the pytest plugin (``--treadle-time``).
"""

from __future__ import annotations

import math
from typing import Any

from treadle.errors import TreadleError


class BudgetError(TreadleError, ValueError):
    """A budget that cannot explore anything (the CLI exits 2; the Python API sees a ValueError)."""


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and value > 0:
            return int(value)
        raise BudgetError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise BudgetError(f"{name} must be a positive integer, got {value!r}")
    return value


def positive_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BudgetError(f"{name} must be a positive number of seconds, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise BudgetError(f"{name} must be a positive finite number of seconds, got {value!r}")
    return v


def non_negative_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BudgetError(f"{name} must be a number of seconds >= 0, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise BudgetError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return v


def check_budgets(
    runs: Any = None, steps: Any = None, time: Any = None, shrink_time: Any = None
) -> None:
    """Raise :class:`BudgetError` naming the first budget that cannot explore anything."""
    if runs is not None:
        positive_int("runs", runs)
    if steps is not None:
        positive_int("steps", steps)
    if time is not None:
        positive_seconds("time", time)
    if shrink_time is not None:
        non_negative_seconds("shrink_time", shrink_time)


# argparse types: the same rules, with the option's own name in the message
def arg_positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _arg_error(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise _arg_error(f"expected a positive integer, got {text!r}")
    return value


def arg_non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _arg_error(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise _arg_error(f"expected a non-negative integer, got {text!r}")
    return value


def arg_positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _arg_error(f"expected a positive number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise _arg_error(f"expected a positive finite number of seconds, got {text!r}")
    return value


def arg_non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _arg_error(f"expected a number of seconds >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise _arg_error(f"expected a finite number of seconds >= 0, got {text!r}")
    return value


def _arg_error(message: str) -> Exception:
    import argparse

    return argparse.ArgumentTypeError(message)
