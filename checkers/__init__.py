"""Verdicts on histories and states. Checkers never import ``impl``: they judge histories
recorded anywhere, real systems included."""

from treadle.checkers.result import CheckResult

__all__ = ["CheckResult"]
