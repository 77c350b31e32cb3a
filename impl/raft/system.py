"""Binding of Raft: servers, clients, the safety invariants, the seeded bugs.

Checks:

* after every step, the five Raft properties on the live servers' states
  (:class:`checkers.raft.StateChecker`, fed only the servers that changed);
* at the end of a run, the same five properties again offline from the recorded protocol events
  (which also checks that what the servers record agrees with what they hold), then
  linearizability of the client operations with the ``kv`` model;
* with ``check_quorum`` on, at the end of a run: no leader stays cut off from a majority (by
  partitions and crashes, as the world recorded them) for longer than ``check_quorum_bound``
  without stepping down (:mod:`checkers.raft.quorum`, Ongaro's thesis 6.2);
* after the run, a *quiet tail* of ``quiet_tail`` ticks (every server restarted but the
  ``tail_down`` minority, partitions healed, no loss or duplication; each client gets one more
  operation): progress (:mod:`checkers.raft.progress`): a steady leader, followers caught up,
  the leader's entries committed, the tail's operations answered.
"""

from __future__ import annotations

from typing import Any

from treadle.checkers.raft import ServerView, StateChecker, check_history
from treadle.checkers.raft.progress import Bounds, check_progress
from treadle.checkers.raft.quorum import check_quorum
from treadle.checkers.result import CheckResult
from treadle.impl.raft.node import RaftClient, RaftServer

from treadle.config import Rule, at_most, choice, flag, integer
from treadle.coverage import PerNode, declared_sometimes
from treadle.system import Cluster, System
from treadle.world import World


def build(config: dict[str, Any], bug: str | None) -> Cluster:
    servers = {f"n{i}": RaftServer for i in range(1, int(config["nodes"]) + 1)}
    ops = int(config["ops_per_client"])
    timeout, tries, keys = (
        int(config["client_timeout"]),
        int(config["client_tries"]),
        int(config["keys"]),
    )
    op, think = str(config["client_op"]), int(config["client_think_max"])
    clients = {
        f"c{i}": (lambda: RaftClient(ops, timeout, tries, keys, op=op, think=think))
        for i in range(1, int(config["clients"]) + 1)
    }
    return Cluster(servers=servers, clients=clients)


class _Watch:
    """Per-run state of the invariant: the checker and what it saw of each server.

    Kept as an attribute of the world (``world.raft_watch``), not in a table keyed by the world:
    the exhaustive explorer copies worlds between steps, and a copy must carry the history of
    its path (which terms had a leader, which entries were committed) for the per-step checks
    to see the whole path. Copying is cheap: the checker's memory is plain immutable data in
    dicts, and the servers it remembers are mapped to the copy's servers."""

    __slots__ = ("checker", "seen", "incarnations")

    def __init__(self) -> None:
        self.checker = StateChecker()
        self.seen: dict[str, tuple[RaftServer, int] | None] = {}
        self.incarnations: dict[str, int] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> _Watch:
        new = _Watch.__new__(_Watch)
        new.checker = self.checker.copy()
        new.seen = {
            nid: None if last is None else (memo.get(id(last[0]), last[0]), last[1])
            for nid, last in self.seen.items()
        }
        new.incarnations = dict(self.incarnations)
        return new


def view(nid: str, node: RaftServer, incarnation: int) -> ServerView:
    return ServerView(
        node=nid,
        term=node.current_term,
        role=node.role,
        log=tuple((e.term, e.command) for e in node.log),
        commit_index=node.commit_index,
        incarnation=incarnation,
        snapshot_index=node.snap_index,
    )


def raft_safety(world: World) -> CheckResult | None:
    """The five properties on the servers that changed in the last step."""
    w = world.__dict__.get("raft_watch")
    if w is None:
        w = world.raft_watch = _Watch()  # type: ignore[attr-defined]
    changed = []
    for nid in world.server_ids:
        node = world.nodes.get(nid)
        last = w.seen.get(nid)
        if node is None:
            if last is not None:
                w.checker.forget(nid)
                w.seen[nid] = None
            continue
        if last is not None and last[0] is node and last[1] == node.version:  # type: ignore[attr-defined]
            continue
        if last is None or last[0] is not node:
            w.incarnations[nid] = w.incarnations.get(nid, -1) + 1
        w.seen[nid] = (node, node.version)  # type: ignore[attr-defined]
        changed.append(view(nid, node, w.incarnations[nid]))  # type: ignore[arg-type]
    if not changed:
        return None
    return w.checker.observe(changed)


CLIENT_EVENTS = ("invoke", "ok", "fail", "info")


def ghost(world: World) -> Any:
    """What the checks remember of a path, for exhaustive search (``fingerprint_ghost``): the
    leader of every term so far, the committed entries (index, entry, term of the first commit),
    and the client operations in order (linearizability reads only those). Order-free across
    servers, unlike the full history, so states reached by interleavings that commute merge."""
    w = world.__dict__.get("raft_watch")
    c = w.checker if w is not None else None
    clients = tuple(
        (e.get("process"), e["type"], e.get("f"), _plain(e.get("value")), e.get("key"))
        for e in world.history
        if e["type"] in CLIENT_EVENTS
    )
    if c is None:
        return (frozenset(), frozenset(), clients)
    return (
        frozenset(c.leaders.items()),
        frozenset((i, entry, term) for i, (entry, _, term) in c.committed.items()),
        clients,
    )


def _plain(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def history_safety(world: World) -> CheckResult:
    """Offline: the five properties from the recorded events, then kv linearizability."""
    return check_history(world.history, timeout=10.0)


def quiet_tail(world: World) -> None:
    """After the run: the faults stop for ``quiet_tail`` ticks, and each client gets one more
    operation, invoked a few election timeouts in (when a leader is usually established)."""
    ticks = int(world.config["quiet_tail"])
    if ticks <= 0:
        return
    delay = 3 * int(world.config["election_timeout_max"])

    def more_work(w: World) -> None:
        for cid in w.client_ids:
            w.set_timer(cid, "tail", delay)

    # steps are a safety bound only: the tail ends by time (a Raft cluster is never quiescent)
    world.settle(
        ticks * 20 * len(world.factories),
        max_ticks=ticks,
        on_quiet=more_work,
        keep_down=tail_down(world),
    )


def tail_down(world: World) -> list[str]:
    """The minority that stays down in the quiet tail (``tail_down`` servers; -1: as many as
    may be, ``(nodes - 1) // 2``): first the leader of the newest term, so that the tail must
    elect a leader with a minority down, then the servers that are down already, then the
    others from the last. Raft is available with any majority up (section 1)."""
    n = len(world.server_ids)
    k = int(world.config.get("tail_down", 0))
    k = min((n - 1) // 2, k if k >= 0 else n)
    if k <= 0:
        return []
    live = {nid: node for nid, node in world.nodes.items() if isinstance(node, RaftServer)}
    newest = max((node.current_term for node in live.values()), default=0)
    leaders = sorted(
        nid for nid, node in live.items() if node.role == "leader" and node.current_term == newest
    )
    order = leaders + sorted(world.down) + sorted(world.server_ids, reverse=True)
    return list(dict.fromkeys(order))[:k]


def progress_bounds(config: dict[str, Any]) -> Bounds | None:
    """Generous bounds from the timing parameters (section 5.6: broadcast time << election
    timeout): ten election timeouts to elect, three and four heartbeats plus twenty message
    latencies for a follower to catch up, a client's every try plus an election timeout.
    None where Raft promises no progress: election timeouts that are not randomized (split
    votes may repeat forever), or a heartbeat plus a round trip (or plus two scheduling
    windows) not well inside the shortest election timeout (followers would keep starting
    elections). Operations are judged only if a
    client has tries enough to reach the leader through a follower that does not know it yet
    (a random server, a back-off, another random server, the hint)."""
    et_min, et = int(config["election_timeout_min"]), int(config["election_timeout_max"])
    hb, lat = int(config["heartbeat_interval"]), int(config["latency_max"])
    # the quiet tail delivers every message after latency_min ticks (World.settle), but any
    # event due within `window` ticks of the earliest may go first: a heartbeat timer may fire
    # and its AppendEntries arrive up to a window late each, so a follower hears from the
    # leader at least every heartbeat + 2 windows
    rtt = 2 * int(config["latency_min"])
    window = int(config["window"])
    if (
        not config["election_jitter"]
        or et_min >= et
        or hb + rtt >= et_min
        or hb + 2 * window >= et_min
    ):
        return None
    tries = int(config["client_tries"])
    return Bounds(
        elect_within=10 * et + hb,
        catch_up=3 * et + 4 * hb + 20 * lat,
        op_bound=int(config["client_timeout"]) * tries + et if tries >= 4 else None,
    )


def progress(world: World) -> CheckResult | None:
    """Progress in the quiet tail (None when the run had none)."""
    bounds = progress_bounds(world.config)
    if world.settled_at is None or bounds is None:
        return None
    servers = [
        view(nid, node, 0)  # type: ignore[arg-type]
        for nid, node in ((n, world.nodes.get(n)) for n in world.server_ids)
        if node is not None
    ]
    # nothing pending at the end (no timer, no message): the state is final, judged as such
    quiescent = not world.enabled_normal()
    r = check_progress(
        servers,
        world.history,
        world.settled_at,
        world.now,
        bounds,
        down=sorted(world.down),
        quiescent=quiescent,
    )
    world.sometimes(
        "raft: the progress check judged a quiet tail with a minority down",
        bool(world.down) and r.details.get("leader") is not None,
    )
    world.sometimes(
        "raft: the progress check judged the leader's entries committed",
        r.details.get("entries", 0) > 0,
    )
    world.sometimes(
        "raft: the progress check judged an operation of the quiet tail",
        r.details.get("operations", 0) > 0,
    )
    world.sometimes(
        "raft: the progress check judged followers catching up", r.details.get("followers", 0) > 0
    )
    return r


def check_quorum_bound(config: dict[str, Any]) -> int:
    """How long a leader may stay cut off from a majority with CheckQuorum on: its check runs
    once per ``election_timeout_max``, so the round the cut falls in may still count replies
    from before it (and one more round a reply already in flight from a server that then
    crashed); each timer may drift by ``timer_drift`` and fire up to ``window`` ticks late."""
    et, lat = int(config["election_timeout_max"]), int(config["latency_max"])
    drift, window = int(config["timer_drift"]), int(config["window"])
    return 2 * (et + drift + window) + lat + window


def check_quorum_steps_down(world: World) -> CheckResult | None:
    """With CheckQuorum on, no leader stays cut off from a majority past the bound (None: off)."""
    if not world.config.get("check_quorum"):
        return None
    return check_quorum(
        world.history, world.server_ids, check_quorum_bound(world.config), world.now
    )


def _server_summary(nid: str, node: Any) -> tuple[Any, ...] | None:
    if not isinstance(node, RaftServer):
        return None  # a client
    n, t = node.last_log()
    return (node.role, node.current_term, t, n, node.commit_index)


def _cluster_shape(summaries: dict[str, Any], world: World) -> list[Any]:
    """Per live server its role, its term against the newest term, its last log term against the
    newest last log term, its log length against the longest and its commit index against the
    highest (each: behind or level); and for the cluster how many leaders and candidates there
    are, whether a leader holds the newest term, how many servers have the newest log, and how
    many servers are down. Coarse on purpose, so that the features saturate: a new value is a
    new situation of the paper's proofs (a stale leader, a follower with a longer but older
    log, two leaders). (The multiset of the per-server values together did not saturate: 870
    values in 100 random runs and counting, every run "new", which starves the energy.)"""
    live = [s for s in summaries.values() if s is not None]
    if not live:
        return []
    max_term = max(s[1] for s in live)
    max_last_term = max(s[2] for s in live)
    max_len = max(s[3] for s in live)
    max_commit = max(s[4] for s in live)
    out: list[Any] = [
        ("server", role, term == max_term, t == max_last_term, n == max_len, c == max_commit)
        for role, term, t, n, c in live
    ]
    out.append(
        (
            "cluster",
            sum(1 for s in live if s[0] == "leader"),
            sum(1 for s in live if s[0] == "candidate"),
            any(s[0] == "leader" and s[1] == max_term for s in live),
            sum(1 for s in live if s[2] == max_last_term and s[3] == max_len),
            len(world.down),
        )
    )
    return list(dict.fromkeys(out))


#: the abstract state of the cluster for the guided strategy (recomputed only when the server a
#: step acted on changed its role, term, log or commit index)
coverage = PerNode(_server_summary, _cluster_shape)


BUGS = {
    "figure8": "a leader commits entries of earlier terms by counting replicas (the paper's "
    "Figure 8): a later leader without them overwrites them (breaks Leader Completeness, then "
    "State Machine Safety)",
    "no-persist-vote": "votedFor is not written to storage: a server that crashes after voting "
    "votes again in the same term (breaks Election Safety)",
    "log-length-vote": "the RequestVote up-to-date check compares log lengths only, not last "
    "terms: a long stale log wins an election (breaks Leader Completeness)",
    "stale-ae-truncate": "a follower truncates its log after every AppendEntries, even a stale "
    "one with no conflict, deleting entries it already acknowledged (breaks Leader Completeness)",
    "no-dedup": "the state machine applies a retried request again instead of answering from the "
    "client's session: an append lands twice (breaks linearizability)",
    "local-read": "a leader answers get from its own state machine without the log or a "
    "read-index round: a deposed leader serves stale reads (breaks linearizability)",
}

system = System(
    name="raft",
    description="Raft (Ongaro & Ousterhout 2014) with PreVote, CheckQuorum, snapshots and a "
    "deduplicating replicated KV store (get/put/append/cas) with retrying clients",
    build=build,
    bugs=BUGS,
    config_keys=[
        integer("nodes", 3, "Raft servers", minimum=1, maximum=15),
        integer("clients", 3, "clients"),
        integer("ops_per_client", 5, "operations per client"),
        integer("keys", 2, "keys the clients use", minimum=1),
        integer("client_timeout", 30, "ticks a client waits for a reply", minimum=1),
        integer("client_tries", 6, "attempts per operation before info", minimum=1),
        integer("election_timeout_min", 10, "smallest election timeout, ticks", minimum=1),
        integer("election_timeout_max", 20, "largest election timeout, ticks", minimum=1),
        # false: a fixed election timeout (election_timeout_min), no random draw (exhaustive)
        flag("election_jitter", True, "draw each election timeout in [min, max]"),
        # only the first k servers stand for election (0: all); a bound for exhaustive runs
        integer("election_candidates", 0, "servers that may stand for election, 0 = all"),
        integer("heartbeat_interval", 5, "ticks between a leader's AppendEntries", minimum=1),
        # "mixed" (get/put/append/cas drawn per operation) or one of them, always
        choice("client_op", "mixed", ("mixed", "get", "put", "append", "cas"), "client ops"),
        # a client pauses 1..this many ticks before an operation (0: no pause)
        integer("client_think_max", 10, "a client pauses up to this many ticks, 0 = never"),
        # Off by default: both make leader changes rarer, and the seeded bugs need leader
        # changes with partial replication to show. Explorations draw each on in one run in
        # three (swarm: treadle.options; a value listed twice is drawn twice as often);
        # --config prevote=true pins one.
        flag("prevote", False, "PreVote (thesis 9.6)", swarm=(False, False, True)),
        flag("check_quorum", False, "CheckQuorum (thesis 6.2)", swarm=(False, False, True)),
        # compact the log into a snapshot every this many applied entries (0: never)
        integer(
            "snapshot_every",
            6,
            "snapshot every this many applied entries, 0 = never",
            swarm=(6, 2, 0),
        ),
        # traces saved before the key existed had no tail (legacy 0) and replay unchanged
        integer(
            "quiet_tail",
            300,
            "fault-free ticks after the run, judged for progress, 0 = none",
            legacy=0,
        ),
        # a minority down for the whole tail, the newest leader first (Raft's availability
        # claim is "any majority"); drawn per run, and 0 is what traces saved before it did
        integer(
            "tail_down",
            0,
            "servers kept down in the quiet tail, -1 = a minority",
            minimum=0,
            special={-1: "as many as a minority allows"},
            swarm=(0, 0, -1),
        ),
    ],
    config_rules=[
        at_most("election_timeout_min", "election_timeout_max"),
        at_most("election_candidates", "nodes"),
        Rule(
            ("tail_down", "nodes"),
            lambda c: c["tail_down"] <= (c["nodes"] - 1) // 2,
            "tail_down <= (nodes - 1) // 2 (a majority stays up)",
        ),
    ],
    defaults={
        "crash_rate": 0.01,
        "restart_rate": 0.1,
        "partition_rate": 0.03,
        "heal_rate": 0.03,
        "drop_rate": 0.03,
        "duplicate_rate": 0.03,
    },
    invariants=[raft_safety],
    final_checks=[history_safety, check_quorum_steps_down, progress],
    settle=quiet_tail,
    settle_enabled=lambda config: int(config["quiet_tail"]) > 0,
    # the shrinker may try fewer clients, operations and keys (Figure 8 needs 3 servers)
    shrink_config={"clients": 1, "ops_per_client": 1, "keys": 1, "nodes": 3},
    steps=600,
    version="2",
    # The small configuration of dfs/bfs/dpor (docs/raft.md, "Exhaustive runs"): an asynchronous
    # world (every pending message and timer is enabled at any moment, as in TLA+; fixed latency,
    # no drift), so due times and random election timeouts decide nothing and are left out;
    # 3 servers of which 2 may stand for election, one timer firing per node, no crash, and the
    # client idle (0 operations): elections, votes and the leaders' AppendEntries. One crash
    # (--config max_crashes=1) or one operation (--config ops_per_client=1) are the next levels.
    exhaustive={
        "nodes": 3,
        "clients": 1,
        "ops_per_client": 0,
        "keys": 1,
        "client_op": "append",
        "client_think_max": 0,
        "client_tries": 2,
        "prevote": False,
        "check_quorum": False,
        "snapshot_every": 0,
        "quiet_tail": 0,
        "election_jitter": False,
        "election_candidates": 2,
        "window": 1_000_000_000,
        "latency_min": 1,
        "latency_max": 1,
        "timer_drift": 0,
        "crash_rate": 0.01,
        "restart_rate": 0.05,
        "max_down": 1,
        "partition_rate": 0.0,
        "drop_rate": 0.0,
        "duplicate_rate": 0.0,
        "max_crashes": 0,
        "max_timer_fires": 1,
        "max_depth": 80,
    },
    symmetric=[["c1", "c2", "c3"]],
    sometimes=declared_sometimes("treadle.impl.raft.node"),
    coverage=coverage,
)
# Exhaustive search: the per-step checks keep their memory of the path on the world (which terms
# had a leader, what was committed) and it goes into the fingerprint as a ghost; the recorded
# protocol events themselves (whose order across servers would keep apart states that differ
# only by commuting steps) stay out, and do not make every pair of steps dependent for DPOR.
system.checks_read_history = False  # type: ignore[attr-defined]
system.fingerprint_ghost = ghost  # type: ignore[attr-defined]
