"""Systems: what ``treadle explore NAME`` runs.

A system binding ties nodes, client workload, checks and seeded bugs together, and is registered
under the entry-point group ``treadle.systems`` (in pyproject.toml)::

    [project.entry-points."treadle.systems"]
    mysys = "mypkg.system:system"      # a System object (or a function returning one)

The project's own systems are registered the same way a user's are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from treadle.checkers.result import CheckResult
from treadle.config import ConfigError, Key, Rule, Schema, infer
from treadle.errors import TreadleError
from treadle.node import Node
from treadle.world import STRATEGY_SCHEMA, WORLD_SCHEMA

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
    #: config defaults: world keys it wants different (and, for a system that does not declare
    #: ``config_keys``, its own keys, typed by their defaults)
    defaults: dict[str, Any] = field(default_factory=dict)
    #: the system's own config keys: type, range, default, what it means (:mod:`treadle.config`)
    config_keys: list[Key] = field(default_factory=list)
    #: constraints across keys, e.g. ``at_most("election_timeout_min", "election_timeout_max")``
    config_rules: list[Rule] = field(default_factory=list)
    #: checked after every step (keep them cheap, or incremental)
    invariants: list[WorldCheck] = field(default_factory=list)
    #: checked once at the end of a run (after settling, if settle_steps > 0)
    final_checks: list[WorldCheck] = field(default_factory=list)
    #: checks of the recorded history that are prefix-closed (a violation of a prefix is a
    #: violation of every extension, as for linearizability): run at the end of a run after the
    #: final checks, and by exhaustive search at every state whose history gained a completed
    #: operation, so a violation is found at its shallowest depth
    history_checks: list[WorldCheck] = field(default_factory=list)
    #: after the run, heal and restart everything and run this many fault-free steps
    settle_steps: int = 0
    #: the system's own fault-free tail after the run, instead of ``settle_steps`` (world -> None;
    #: e.g. ``world.settle(steps, max_ticks=world.config["quiet_tail"], on_quiet=...)``): the
    #: final checks judge what happened once the faults stopped
    settle: Callable[[World], Any] | None = None
    #: whether ``settle`` does anything under a configuration (None: always), so exhaustive
    #: search does not copy every final state for a tail that is switched off
    settle_enabled: Callable[[dict[str, Any]], bool] | None = None
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
    #: the sometimes-assertions the nodes and checks make (``ctx.sometimes(name, cond)``): an
    #: exploration reports those of them never reached, including ones never even evaluated
    #: (a list of names, or a callable returning them: ``declared_sometimes("mypkg.node")``)
    sometimes: list[str] | Callable[[], list[str]] = field(default_factory=list)
    #: the system's abstraction of a world for the guided strategy (world -> iterable of
    #: hashable values, e.g. role x term relation x log relation per server), sampled after
    #: every step; a new value is new coverage. Keep it cheap and coarse.
    coverage: Callable[[World], Any] | None = None

    def settle_world(self, world: World) -> None:
        """Run the fault-free tail after a run, if the system has one."""
        if self.settle is not None:
            self.settle(world)
        elif self.settle_steps:
            world.settle(self.settle_steps)

    def settles(self, config: dict[str, Any]) -> bool:
        """Whether a run under ``config`` has a fault-free tail."""
        if self.settle is not None:
            return self.settle_enabled is None or bool(self.settle_enabled(config))
        return bool(self.settle_steps)

    def sometimes_names(self) -> list[str]:
        """The declared sometimes-assertions."""
        s = self.sometimes
        return list(s() if callable(s) else s)

    def schema(self) -> Schema:
        """World, strategy and system keys (a key the system has in ``defaults`` but does not
        declare gets the type of its default and no range)."""
        base = WORLD_SCHEMA + STRATEGY_SCHEMA + Schema(self.config_keys, self.config_rules)
        undeclared = [infer(k, v) for k, v in self.defaults.items() if k not in base]
        return base + Schema(undeclared) if undeclared else base

    def resolve_config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The full configuration of a run: defaults, the system's, then ``overrides``
        (command-line strings are coerced). Every value is checked against its key's type and
        range, then the rules across keys: a ConfigError names the key, the value and what
        was expected."""
        schema = self.schema()
        return schema.resolve([self.defaults, overrides or {}], self._unknown_key)

    def _unknown_key(self, key: str) -> ConfigError:
        from treadle.exhaustive import EXPLORER_SCHEMA

        if key in EXPLORER_SCHEMA:
            return ConfigError(
                f"config {key} is an exhaustive-search bound: it applies with --strategy "
                "dfs, bfs or dpor"
            )
        known = ", ".join(sorted(self.schema().keys))
        return ConfigError(f"unknown config key {key!r} for system {self.name}; known: {known}")

    def check_bug(self, bug: str | None) -> None:
        if bug is not None and bug not in self.bugs:
            known = ", ".join(sorted(self.bugs)) or "none"
            raise TreadleError(f"unknown bug {bug!r} for system {self.name}; known: {known}")


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
