"""Binding of PBFT: n = 3f+1 replicas (the first ``byzantine`` of them faulty), clients, checks,
seeded bugs."""

from __future__ import annotations

from typing import Any

from treadle.checkers.pbft import check_liveness, safety_invariant
from treadle.checkers.pbft.clients import client_check
from treadle.checkers.pbft.progress import check_client_progress
from treadle.checkers.result import CheckResult
from treadle.impl.pbft.byzantine import BYZANTINE_MODES, ByzantineReplica
from treadle.impl.pbft.node import Client, Replica

from treadle.coverage import PerNode, declared_sometimes
from treadle.system import Cluster, System
from treadle.world import World


def build(config: dict[str, Any], bug: str | None) -> Cluster:
    f = int(config["f"])
    n = 3 * f + 1
    faulty = int(config["byzantine"])
    if not 0 <= faulty <= n:
        raise ValueError(f"byzantine={faulty}: expected 0..{n}")
    mode = config["byzantine_mode"]
    if mode != "mix" and mode not in BYZANTINE_MODES:
        raise ValueError(f"byzantine_mode={mode!r}: expected mix or one of {BYZANTINE_MODES}")
    servers: dict[str, Any] = {}
    for i in range(1, n + 1):
        # n1 is the primary of view 0: making the faulty replicas the first ones means every run
        # starts under a faulty primary (equivocation, wrong digests, a view change)
        servers[f"n{i}"] = ByzantineReplica if i <= faulty else Replica
    ops, timeout, retries = (
        int(config["ops_per_client"]),
        int(config["client_timeout"]),
        int(config["client_retries"]),
    )
    think = bool(config["think"])
    clients = {
        f"c{i}": (lambda: Client(ops, timeout, retries, think))
        for i in range(1, int(config["clients"]) + 1)
    }
    return Cluster(servers=servers, clients=clients)


def safety_after_settle(world: World) -> CheckResult | None:
    """The invariant runs after each step of the run; this covers the settling steps too."""
    return safety_invariant(world)


def liveness(world: World) -> CheckResult | None:
    return check_liveness(world.history, int(world.config["f"]))


#: the fault-free settle without the client tail (what saved traces replay with)
SETTLE_STEPS = 3000
#: the client tail's bound in view-change timeouts (the worst measured was 40: docs/pbft.md)
TAIL_TIMEOUTS = 128


def tail_bound(config: dict[str, Any], vc: int | None) -> int | None:
    """Ticks within which a client's operation completes once the faults stop, given the
    longest view-change timeout of a correct replica then (``vc``; None: not judged).

    PBFT's liveness rests on the view-change timeout doubling after each view change that does
    not complete, until it exceeds the network's delay (Castro & Liskov, section 4.5.2); the
    time to recover is proportional to the timeouts the replicas have reached when the faults
    stop, so the bound is a multiple of them: TAIL_TIMEOUTS view-change timeouts plus
    TAIL_TIMEOUTS // 8 client timeouts (the client's retransmissions reach a new primary). The
    measured worst case is 40 timeouts (docs/pbft.md)."""
    timeout = int(config["client_timeout"])
    if timeout <= 0:
        return None  # a client that never retransmits may wait on a faulty primary for ever
    vc = max(int(vc or 0), int(config["view_change_timeout"]))
    return TAIL_TIMEOUTS * vc + TAIL_TIMEOUTS // 8 * timeout


def quiet_tail(world: World) -> None:
    """After the run: heal, restart, no more faults (World.settle). With ``client_tail`` on,
    each client then gets one more operation (or retransmits its open one) and waits for the
    reply, and the tail lasts until the progress bound has passed (or nothing is pending)."""
    if world.config.get("client_tail") != "on":
        world.settle(SETTLE_STEPS)
        return
    # the longest view-change timeout a correct replica reached (a restarted one starts afresh)
    vc = max((n.vc_timeout for n in world.nodes.values() if type(n) is Replica), default=0)
    world.pbft_tail_vc = vc  # type: ignore[attr-defined]
    bound = tail_bound(world.config, vc)
    if bound is None:
        world.settle(SETTLE_STEPS)
        return

    def more_work(w: World) -> None:
        for cid in w.client_ids:
            # patient at once: the tail timer may fire after a timeout due within the
            # scheduling window, and the client must not give up on its open operation then
            w.nodes[cid].patient = True  # type: ignore[attr-defined]
            w.set_timer(cid, "tail", 1)

    # steps are a safety bound only: the tail ends by time, or when nothing is pending
    world.settle(SETTLE_STEPS * 100, max_ticks=bound + 1, on_quiet=more_work)


def client_progress(world: World) -> CheckResult | None:
    """Every client's operation of the quiet tail completed ok within the bound (None: no
    client tail in this run)."""
    vc = getattr(world, "pbft_tail_vc", None)
    if world.config.get("client_tail") != "on" or world.settled_at is None or vc is None:
        return None
    bound = tail_bound(world.config, vc)
    if bound is None:
        return None
    now = world.now
    if not world.enabled_normal():
        now = max(now, world.settled_at + bound)  # nothing pending: nothing will ever change
    return check_client_progress(
        world.history, int(world.config["f"]), world.client_ids, world.settled_at, now, bound
    )


def _replica_summary(nid: str, node: Any) -> tuple[Any, ...] | None:
    """A correct replica's certificates in its view, as raw numbers (the faulty replica's state
    means nothing: it may do anything)."""
    if type(node) is not Replica:
        return None
    view = node.view
    pp_top = prep_top = 0
    for v, seq in node.pre_prepares:
        if v == view:
            if seq > pp_top:
                pp_top = seq
            if seq > prep_top and node.prepared(v, seq) is not None:
                prep_top = seq
    committed_top = max(node.committed, default=node.last_exec)
    return (
        view,
        node.in_view_change,
        max(pp_top, node.stable_seq),
        max(prep_top, node.stable_seq),
        max(committed_top, node.last_exec),
        node.last_exec,
        node.stable_seq,
        node.k,
        bool(node.pending),
    )


def _certificate_shapes(summaries: dict[str, Any], world: World) -> list[Any]:
    """Per correct live replica: its view against the newest, a view change in progress or not,
    the shape of its certificates (pre-prepared beyond prepared, prepared beyond committed,
    committed beyond executed), its execution against the most advanced replica's, and its
    checkpoint (stable at what it executed, behind by less than a checkpoint interval, or by
    more), and whether requests wait; then the cluster: how many replicas are in the newest view
    and in a view change, whether the newest view's primary is the faulty replica, servers down.
    Relations, not numbers, so that the features saturate."""
    live = [s for s in summaries.values() if s is not None]
    if not live:
        return []
    top_view = max(s[0] for s in live)
    top_exec = max(s[5] for s in live)
    out: list[Any] = []
    for view, vc, pp, prep, com, ex, stable, k, waiting in live:
        behind = ex - stable
        checkpoint = "stable" if behind == 0 else ("behind" if behind < k else "lagging")
        out.append(
            (
                "replica",
                view == top_view,
                vc,
                pp > prep,
                prep > com,
                com > ex,
                ex == top_exec,
                checkpoint,
                waiting,
            )
        )
    primary = world.server_ids[top_view % len(world.server_ids)]
    out.append(
        (
            "cluster",
            sum(1 for s in live if s[0] == top_view),
            sum(1 for s in live if s[1]),
            summaries.get(primary, 0) is None and primary not in world.down,  # faulty primary
            len(world.down),
        )
    )
    return list(dict.fromkeys(out))


system = System(
    name="pbft",
    description="Practical Byzantine Fault Tolerance (Castro & Liskov), n = 3f+1, Byzantine replicas",
    build=build,
    bugs={
        "weak-quorum": "2f instead of 2f+1 for every quorum (prepared, committed-local, "
        "checkpoints, new view): two quorums may share only a faulty replica (breaks Agreement)",
        "view-change-drops-prepared": "the new primary ignores the prepared certificates of the "
        "VIEW-CHANGE messages: a request committed in an old view loses its sequence number "
        "(breaks Agreement)",
        "no-digest-check": "a backup accepts a pre-prepare whose digest does not match the "
        "request it carries: replicas agree on a digest but execute different requests "
        "(breaks Agreement)",
        "accept-any-view": "replicas accept pre-prepares, prepares and commits of any view, also "
        "during a view change: an old view keeps deciding after its replicas reported what they "
        "prepared (breaks Agreement)",
        "accept-pre-prepare-from-backup": "a backup accepts a pre-prepare from any other "
        "replica, not only from the primary of its view: a faulty backup orders requests "
        "itself, and the view changes of the replicas that followed it carry certificates no "
        "one accepts (breaks Liveness)",
        "client-accepts-f-replies": "a client accepts f matching replies instead of f+1: one "
        "faulty replica can make it accept a result it made up (breaks Result Validity, which "
        "only the client-side check sees)",
    },
    defaults={
        "f": 1,
        "byzantine": 1,
        "byzantine_mode": "mix",
        "clients": 2,
        "ops_per_client": 3,
        "client_timeout": 40,  # <= 0: wait for the replies (exhaustive runs)
        "think": True,  # False: each operation starts at once (exhaustive runs)
        "client_retries": 4,
        "checkpoint_interval": 2,
        "watermark_window": 4,
        "view_change_timeout": 20,
        "status_interval": 10,
        # the fault mix the implementation tolerates (docs/pbft.md): f Byzantine replicas, loss,
        # duplication, reordering, partitions, and crash-recovery of any replica (durable state)
        "crash_rate": 0.01,
        "drop_rate": 0.03,
        "duplicate_rate": 0.02,
        "partition_rate": 0.01,
        "heal_rate": 0.05,
        "latency_max": 4,
        "window": 3,
    },
    invariants=[safety_invariant],
    final_checks=[safety_after_settle, liveness, client_check, client_progress],
    # the shrinker may try fewer clients and operations
    shrink_config={"clients": 1, "ops_per_client": 1},
    settle=quiet_tail,
    steps=500,
    # 2: durable request queue, execute events carry the result, ok events the replies counted
    version="2",
    # The normal case, asynchronous (every pending event enabled, no due times in states, DPOR
    # applies): 4 correct replicas, one client, one request, no timer fires (no retransmission,
    # no view change). Even this does not complete within minutes (the prepare and commit
    # messages of 4 replicas interleave freely: tens of thousands of states by depth 10 of ~30),
    # so the run is bounded by max_states and reports "bound hit". No seeded bug is reachable
    # here: weak-quorum and no-digest-check need a Byzantine replica, view-change-drops-prepared
    # and accept-any-view a view change.
    exhaustive={
        "byzantine": 0,
        "clients": 1,
        "ops_per_client": 1,
        "think": False,
        "client_timeout": 0,
        "drop_rate": 0.0,
        "duplicate_rate": 0.0,
        "partition_rate": 0.0,
        "crash_rate": 0.0,
        "window": 1_000_000_000,
        "latency_min": 1,
        "latency_max": 1,
        "timer_drift": 0,
        "max_timer_fires": 0,
        "max_states": 30_000,
        "client_tail": "off",
    },
    symmetric=[["c1", "c2"]],
    sometimes=declared_sometimes("treadle.impl.pbft.node"),
    coverage=PerNode(_replica_summary, _certificate_shapes),
)

# declared config keys (type, range, default) live beside the binding
from treadle.impl.pbft.config_keys import CONFIG_KEYS, CONFIG_RULES  # noqa: E402

system.config_keys = CONFIG_KEYS
system.config_rules = CONFIG_RULES
