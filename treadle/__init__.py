"""treadle: deterministic simulation, exploration and checking of distributed systems.

Everything a user system and its tests need is importable from here::

    from treadle import CheckResult, Cluster, Context, Node, System, check_history

    result = treadle.explore("raft", bug="figure8", time=60)
    result.assert_ok()   # raises AssertionError carrying the replay command

Keyword names are the CLI's flags: ``runs``, ``steps``, ``time``, ``seed``, ``workers``, ...
"""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import Any

from treadle import _source_tree  # noqa: F401  (first: a source tree maps impl/, models/, checkers/)
from treadle.checkers.result import OK, UNKNOWN, VIOLATION, CheckResult
from treadle.config import at_most, choice, flag, integer, number, rate, text
from treadle.node import Context, Node
from treadle.runner import ExploreResult, explore, replay
from treadle.shrink import shrink
from treadle.system import Cluster, System, all_systems, get_system, register
from treadle.trace import Trace, load_trace

try:
    __version__ = _metadata.version("treadle")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = [
    "OK",
    "UNKNOWN",
    "VIOLATION",
    "CheckResult",
    "Cluster",
    "Context",
    "ExploreResult",
    "Node",
    "System",
    "Trace",
    "World",
    "__version__",
    "all_systems",
    "at_most",
    "check_history",
    "choice",
    "explore",
    "flag",
    "get_system",
    "integer",
    "load_trace",
    "number",
    "rate",
    "register",
    "replay",
    "shrink",
    "text",
]


def __getattr__(name: str) -> Any:
    # loaded on first use: the linearizability checker is large, and treadle.hypothesis needs
    # Hypothesis, which a user of the CLI alone need not have
    if name == "check_history":
        from treadle.checkers.linearizability import check_history

        return check_history
    if name == "World":
        from treadle.world import World

        return World
    if name == "hypothesis":
        import importlib

        return importlib.import_module("treadle.hypothesis")
    raise AttributeError(f"module 'treadle' has no attribute {name!r}")
