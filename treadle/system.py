"""Systems: what ``treadle explore NAME`` runs.

A system binding ties nodes, client workload, checks and seeded bugs together, and is registered
under the entry-point group ``treadle.systems`` (in pyproject.toml)::

    [project.entry-points."treadle.systems"]
    mysys = "mypkg.system:system"      # a System object (or a function returning one)

The project's own systems are registered the same way a user's are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from checkers.result import CheckResult
from treadle.errors import TreadleError
from treadle.node import Node
from treadle.world import WORLD_DEFAULTS

if TYPE_CHECKING:
    from treadle.world import World

#: A check on the world: return None or a passing result when the property holds, a violation
#: (or unknown) result when it does not.
WorldCheck = Callable[["World"], "CheckResult | None"]


@dataclass
class Cluster:
    """The nodes of one run: factories, called at start and again at each restart."""

    servers: dict[str, Callable[[], Node]]
    clients: dict[str, Callable[[], Node]] = field(default_factory=dict)


@dataclass
class System:
    name: str
    description: str
    #: (resolved config, bug or None) -> Cluster
    build: Callable[[dict[str, Any], str | None], Cluster]
    #: seeded bugs: name -> what it breaks
    bugs: dict[str, str] = field(default_factory=dict)
    #: config defaults: the system's own keys, and world keys it wants different
    defaults: dict[str, Any] = field(default_factory=dict)
    #: checked after every step (keep them cheap, or incremental)
    invariants: list[WorldCheck] = field(default_factory=list)
    #: checked once at the end of a run (after settling, if settle_steps > 0)
    final_checks: list[WorldCheck] = field(default_factory=list)
    #: after the run, heal and restart everything and run this many fault-free steps
    settle_steps: int = 0
    #: default steps per run
    steps: int = 300
    #: bump when node behaviour changes: traces recorded with another version are refused
    version: str = "1"
    #: the small config used by exhaustive strategies (dfs, bfs, dpor)
    exhaustive: dict[str, Any] = field(default_factory=dict)
    #: groups of interchangeable node ids, for symmetry reduction
    symmetric: list[list[str]] = field(default_factory=list)
    #: bounded liveness predicates for exhaustive runs: (name, world -> bool) that must become
    #: true on every path ("eventually a leader"); reported apart from safety
    liveness: list[tuple[str, Callable[[World], bool]]] = field(default_factory=list)
    #: False if no check reads the history: exhaustive search then leaves it out of state
    #: fingerprints (fewer distinct states) and DPOR stops treating history appends as conflicts
    checks_read_history: bool = True
    #: what the checks remember along a path (world -> hashable), added to state fingerprints
    fingerprint_ghost: Callable[[World], Any] | None = None
    #: config keys the shrinker may lower, each to the smallest value worth trying (fewer
    #: clients, operations, nodes, keys), tried in this order; the run must still violate
    shrink_config: dict[str, int] = field(default_factory=dict)

    def resolve_config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        config = dict(WORLD_DEFAULTS)
        config.update(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in config:
                known = ", ".join(sorted(config))
                raise TreadleError(
                    f"unknown config key {key!r} for system {self.name}; known: {known}"
                )
            config[key] = coerce(value, config[key], key)
        return config

    def check_bug(self, bug: str | None) -> None:
        if bug is not None and bug not in self.bugs:
            known = ", ".join(sorted(self.bugs)) or "none"
            raise TreadleError(f"unknown bug {bug!r} for system {self.name}; known: {known}")


def coerce(value: Any, default: Any, key: str) -> Any:
    """Turn a command-line string into the type of the default."""
    if not isinstance(value, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return value
        return json.loads(value)
    except ValueError:
        raise TreadleError(
            f"config {key}={value!r}: expected a {type(default).__name__} like {default!r}"
        ) from None


def parse_config_args(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise TreadleError(f"--config {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


_cache: dict[str, System] = {}
_broken: dict[str, str] = {}
#: names registered in-process (:func:`register`), not by an entry point
_registered_here: set[str] = set()


def _load_all() -> None:
    if _cache or _broken:
        return
    for ep in sorted(entry_points(group="treadle.systems"), key=lambda e: e.name):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, System):
                obj = obj()
            if not isinstance(obj, System):
                raise TypeError(f"{ep.value} is not a treadle.system.System")
            _cache[ep.name] = obj
        except ModuleNotFoundError as e:
            _broken[ep.name] = f"cannot import {ep.value}: {e}"
        except Exception as e:  # a user's broken plugin must not break `treadle list`
            _broken[ep.name] = f"{type(e).__name__}: {e}"


def all_systems() -> dict[str, System]:
    _load_all()
    return dict(_cache)


def broken_systems() -> dict[str, str]:
    _load_all()
    return dict(_broken)


def get_system(name: str) -> System:
    _load_all()
    if name in _cache:
        return _cache[name]
    if name in _broken:
        raise TreadleError(f"system {name!r} is registered but failed to load: {_broken[name]}")
    known = ", ".join(sorted(_cache)) or "none"
    raise TreadleError(
        f"unknown system {name!r}; known: {known} (systems register under the entry-point "
        f'group "treadle.systems"; after adding one, reinstall the package)'
    )


def register(system: System) -> None:
    """Register a system in-process (tests, notebooks) without an entry point."""
    _load_all()
    _cache[system.name] = system
    _registered_here.add(system.name)
