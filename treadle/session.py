"""Caps that bound every exploration of this process, however it is started.

The pytest plugin sets them from ``--treadle-time``, ``--treadle-runs`` and ``--treadle-seed``, so
a CI job can bound a whole test session in one place: the ``treadle_explore`` fixture, the
``@pytest.mark.treadle`` marker and direct :func:`treadle.explore` calls all obey them. Outside
pytest they are unset and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SessionCaps:
    #: at most this many runs per exploration
    runs: int | None = None
    #: at most this many wall-clock seconds per exploration (its shrinking included)
    time: float | None = None
    #: the base seed of explorations that do not pass one
    seed: int | None = None


_caps = SessionCaps()


def set_caps(runs: int | None = None, time: float | None = None, seed: int | None = None) -> None:
    global _caps
    _caps = SessionCaps(runs, time, seed)


def caps() -> SessionCaps:
    return _caps


def capped(
    runs: int | None, time: float | None, default_runs: int = 100
) -> tuple[int | None, float | None]:
    """``(runs, time)`` bounded by the session caps. An exploration with neither budget would run
    ``default_runs``; one with only a time budget runs until the time is up."""
    c = _caps
    if c.runs is not None:
        if runs is None:
            runs = default_runs if time is None else c.runs
        runs = min(runs, c.runs)
    if c.time is not None:
        time = c.time if time is None else min(time, c.time)
    return runs, time


def base_seed(seed: int | None) -> int:
    """The seed an exploration starts from: its own, else the session's, else 0."""
    if seed is not None:
        return seed
    return _caps.seed if _caps.seed is not None else 0
