"""Exhaustive search: the explorer's bounds (config keys that are not world keys) and the
asynchronous-window threshold."""

from __future__ import annotations

from typing import Any

from treadle.config import Schema, integer

#: a window at least this large makes every pending event enabled: the asynchronous model
ASYNC_WINDOW = 1_000_000

UNBOUNDED = {-1: "unbounded"}

#: explorer bounds that may appear in ``System.exhaustive`` or ``--config`` (not world keys)
EXPLORER_SCHEMA = Schema(
    [
        integer("max_depth", 200, "steps per path", minimum=1),
        integer("max_states", 2_000_000, "distinct states (dfs/bfs) or executions (dpor)", 1),
        integer("max_crashes", -1, "crashes per path (max_down still applies)", 0, None, UNBOUNDED),
        integer("max_partitions", -1, "partitions per path", 0, None, UNBOUNDED),
        integer("max_timer_fires", -1, "timer firings per node per path", 0, None, UNBOUNDED),
    ]
)
EXPLORER_DEFAULTS: dict[str, Any] = EXPLORER_SCHEMA.defaults()

_DOWN = ("<down>",)


class _Stop(Exception):
    """Unwinds the search (violation found, or a bound)."""
