"""Exhaustive exploration: BFS/DFS over canonical state fingerprints, and stateless DPOR.

Every nondeterministic decision of the world is a choice (:meth:`World.choose`): which enabled
event, and inside the step a node's random draw, a latency, a message's fate, a partition split.
A *transition* is one step: the event choice followed by the step's inner choices. The explorers
enumerate every transition of a state by re-running the step on a copy of the state with a
scripted choice list, walking the inner choices like an odometer. The choice list of a path is
exactly what :class:`treadle.strategies.Replay` feeds back, so a counterexample is a normal trace.

Time. In a world whose ``window`` is at least :data:`ASYNC_WINDOW` every pending event is always
enabled (the fully asynchronous network of Stateright and TLA+): due times then decide nothing
but the order of the enabled list, so fingerprints leave them out, and events at different nodes
commute (which DPOR needs). With a smaller window, enabledness depends on due times and
``now`` moves with the schedule: fingerprints keep due times *relative to now* (future behaviour
is invariant under a shift of all times, provided nodes do not act on absolute ``ctx.now`` without
keeping it in ``state()``), and DPOR treats every pair of events as dependent.

The fingerprint of a state: every node's ``state()`` (or "down"), its durable storage, the
multiset of pending messages (src, dst, message) and timers (node, name), the partition, the fault
and timer budgets used so far, which liveness predicates have held on the path, and, unless the
system says its checks do not read it (``checks_read_history = False``), the recorded history
without its time stamps (history-based checks such as linearizability depend on it).

Symmetry (``System.symmetric``): states are canonicalized by renaming the ids of each group of
interchangeable nodes, sorted by an id-free signature (ties resolved by trying their orders).

DPOR: source-DPOR with sleep sets (Abdulla, Aronis, Jonsson, Sagonas, "Optimal dynamic partial
order reduction", POPL 2014, Algorithm 1), the successor of Flanagan and Godefroid (POPL 2005).
Each pending message or timer is a "process" with a single event; two events are dependent iff
they run at the same node, or one is a fault, or both append to a history the checks read;
happens-before also includes "the event that sent a message precedes its delivery".

The package: :mod:`.bounds` (bounds), :mod:`.canon` (canonical data, world copies),
:mod:`.explorer` (transitions and fingerprints), :mod:`.search` (BFS/DFS), :mod:`.dpor` (DPOR),
:mod:`.workers` (BFS on workers, with the serial counts), :mod:`.explore` (the entry point).
Every name is importable from ``treadle.exhaustive``.
"""

from __future__ import annotations

from treadle.exhaustive.bounds import (  # noqa: F401
    _DOWN,
    ASYNC_WINDOW,
    EXPLORER_DEFAULTS,
    EXPLORER_SCHEMA,
    UNBOUNDED,
    _Stop,
)
from treadle.exhaustive.canon import (  # noqa: F401
    _ALL,
    _ATOMS,
    _NESTED,
    _WORLD_FIELDS,
    _canon,
    _copy_node,
    _copy_value,
    _freeze,
    _rename,
    clone_world,
)
from treadle.exhaustive.dpor import (  # noqa: F401
    _dependent,
    _Entry,
    _Frame,
    count_traces,
    dpor,
)
from treadle.exhaustive.explore import (  # noqa: F401
    explore_exhaustive,
    make_explorer,
    split_config,
)
from treadle.exhaustive.explorer import (  # noqa: F401
    _COMPLETIONS,
    Explorer,
    Found,
    Stats,
    _completes,
    _fact,
    _flatten,
    _handler_exception,
    _next_prefix,
    _run_check,
    _Script,
)
from treadle.exhaustive.search import (  # noqa: F401
    _count_paths,
    search,
)
