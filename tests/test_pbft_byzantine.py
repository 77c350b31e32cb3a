"""PBFT's Byzantine fault model (issue 18): some mode forges every message kind a replica sends,
to replicas and to clients, under the faulty replica's own signature only; the correct replicas
tolerate it; and a backup that usurps the primary's role is what the non-primary check of a
pre-prepare guards against (a mutant that deleted that check survived every earlier mode)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from treadle.impl.pbft.byzantine import BYZANTINE_MODES
from treadle.impl.pbft.messages import (
    Bundle,
    CommitCert,
    NewView,
    PreparedCert,
    PrePrepare,
    Request,
    StateTransfer,
    ViewChange,
)
from treadle.impl.pbft.system import system

from treadle.run import run_once
from treadle.runner import explore
from treadle.strategies import Recorder, make_strategy
from treadle.world import World

NON_PRIMARY_PRE_PREPARE = (
    "pbft: a backup ignores a pre-prepare from a replica that is not the primary"
)
NON_PRIMARY_NEW_VIEW = "pbft: a replica ignores a new view from a replica that is not its primary"
REFUSED_VIEW_CHANGE = "pbft: a replica refuses a view change it cannot verify"

#: every kind of message a replica sends (docs/pbft.md), and what forge lies in for each
FORGED_FIELDS = {
    "PrePrepare": {"view", "seq", "seq-outside-watermarks", "digest"},
    "Prepare": {"view", "seq", "seq-outside-watermarks", "digest"},
    "Commit": {"view", "seq", "seq-outside-watermarks", "digest"},
    "Checkpoint": {"state", "seq"},
    "ViewChange": {"view", "stable-seq", "checkpoints", "prepared", "withhold-prepared"},
    "NewView": {"pre-prepares", "view-changes", "requests"},
    "Reply": {"result", "timestamp", "view", "client", "replay"},
    "Status": {"view", "in-view-change", "last-executed", "stable-seq"},
    "CommitCert": {"request", "pre-prepare", "commits"},
    "StateTransfer": {"entries", "checkpoints", "start"},
    "Request": {"request"},
}


class Observed(World):
    """A world that keeps every message sent, in order, with its sender and destination."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str, Any]] = []

    def send(self, src: str, dst: str, msg: Any) -> None:
        self.sent.append((src, dst, msg))
        super().send(src, dst, msg)


def _run(seed: int, mode: str, bug: str | None = None) -> Any:
    cfg = system.resolve_config({"byzantine_mode": mode})
    strategy = make_strategy("mixed")
    strategy.begin_run(seed, cfg, system.steps)
    return run_once(system, cfg, bug, Recorder(strategy), system.steps, world_cls=Observed)


def signed_records(msg: Any) -> Iterator[Any]:
    """Every signed record in a message, its unsigned envelopes opened (a bundle, a committed
    certificate, a state transfer, a prepared certificate) and the certificates it carries."""
    t = type(msg)
    if t is Bundle:
        for rec in msg.records:
            yield from signed_records(rec)
    elif t is CommitCert:
        yield msg.pre_prepare
        yield from msg.commits
        if msg.request is not None:
            yield msg.request
    elif t is StateTransfer:
        yield from msg.checkpoints
        yield from (req for _, _, req in msg.entries if req is not None)
    elif t is PreparedCert:
        yield msg.pre_prepare
        yield from msg.prepares
        if msg.request is not None:
            yield msg.request
    elif t is ViewChange:
        yield msg
        yield from msg.checkpoints
        for cert in msg.prepared:
            yield from signed_records(cert)
    elif t is NewView:
        yield msg
        for vc in msg.view_changes:
            yield from signed_records(vc)
        yield from msg.pre_prepares
        yield from msg.requests
    else:
        yield msg


def _signer(rec: Any) -> str:
    return rec.client if type(rec) is Request else rec.sender


def _forged(history: list[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """(message kind, field, destination) of each forgery; a bundle's names the record lied in."""
    for e in history:
        if e["type"] != "forged":
            continue
        kind, field = e["message"], e["field"]
        if kind == "Bundle":
            kind, _, field = field.replace(":", ".", 1).partition(".")
        yield kind, field, e["to"]


# ------------------------------------------------------------------ the modes
def test_mode_list_is_append_only():
    # saved traces record the index `mix` drew: the first six keep their places
    assert BYZANTINE_MODES[:6] == (
        "silent",
        "equivocate",
        "conflicting",
        "replay",
        "wrong-digest",
        "wrong-result",
    )
    assert {"forge", "usurp"} <= set(BYZANTINE_MODES)


def test_forge_lies_in_every_field_of_every_message_kind_to_replicas_and_clients():
    fields: dict[str, set[str]] = defaultdict(set)
    to: dict[str, set[str]] = defaultdict(set)
    for seed in range(60):
        r = _run(seed, "forge")
        assert r.violation is None, (seed, r.violation)
        for kind, field, dst in _forged(r.history):
            fields[kind].add(field)
            to[kind].add("client" if dst in r.world.client_ids else "replica")
    assert set(fields) >= set(FORGED_FIELDS)
    for kind, expected in FORGED_FIELDS.items():
        if kind == "NewView":  # n1 is the new primary only in view 4: not every lie comes up
            assert fields[kind] & expected, kind
            continue
        assert fields[kind] >= expected, kind
    assert to["Reply"] == {"client"}
    assert all(to[k] == {"replica"} for k in FORGED_FIELDS if k != "Reply")


def test_usurper_pre_prepares_and_sends_new_views_for_views_it_does_not_lead():
    servers = system.build(system.resolve_config(None), None).servers
    ids = sorted(servers)
    kinds: Counter[str] = Counter()
    for seed in range(20):
        r = _run(seed, "usurp")
        assert r.violation is None, (seed, r.violation)
        for e in r.history:
            if e["type"] == "usurped":
                assert e["node"] == "n1" and ids[e["view"] % len(ids)] != "n1", e
                kinds[e["message"]] += 1
        # each one went on the wire, to every other replica, under its own name
        for e in r.history:
            if e["type"] == "usurped" and e["message"] == "PrePrepare":
                key = (e["view"], e["seq"], e["digest"])
                dsts = {
                    dst
                    for src, dst, msg in r.world.sent
                    if src == "n1"
                    for rec in signed_records(msg)
                    if type(rec) is PrePrepare and (rec.view, rec.seq, rec.digest) == key
                }
                assert dsts == set(ids) - {"n1"}, e
    assert kinds["PrePrepare"] > 0 and kinds["NewView"] > 0


def test_correct_replicas_meet_the_new_lies_and_refuse_them():
    res = explore(system, runs=20, seed=0, config={"byzantine_mode": "usurp"}, out=None)
    assert res.verdict == "ok", res.summary()
    reached = res.to_json()["sometimes"]["reached"]
    assert NON_PRIMARY_PRE_PREPARE in reached and NON_PRIMARY_NEW_VIEW in reached
    assert REFUSED_VIEW_CHANGE in reached
    res = explore(system, runs=20, seed=0, config={"byzantine_mode": "forge"}, out=None)
    assert res.verdict == "ok", res.summary()
    assert REFUSED_VIEW_CHANGE in res.to_json()["sometimes"]["reached"]


@pytest.mark.parametrize("mode", BYZANTINE_MODES)
def test_no_replica_ever_signs_as_another(mode):
    """Unforgeability, checked on the wire: a signed record in a message from S that another
    node X signed was sent by X itself earlier (S forwards or replays it, never makes it up)."""
    for seed in range(4):
        r = _run(seed, mode)
        genuine: dict[str, set[Any]] = defaultdict(set)
        for src, dst, msg in r.world.sent:
            for rec in signed_records(msg):
                signer = _signer(rec)
                if signer != src:
                    assert rec in genuine[signer], (mode, seed, src, dst, rec)
            genuine[src].update(rec for rec in signed_records(msg) if _signer(rec) == src)


@pytest.mark.parametrize("mode", ["forge", "usurp"])
def test_new_modes_are_tolerated_and_deterministic(mode):
    res = explore(
        system, runs=40, seed=500, config={"byzantine_mode": mode}, out=None, shrink_time=0
    )
    assert res.verdict == "ok", res.summary()
    assert res.runs == 40
    a, b = _run(7, mode), _run(7, mode)
    assert a.history == b.history and a.world.sent == b.world.sent


# ------------------------------------------------------------------ what the new mode catches
def test_a_backup_accepting_pre_prepares_from_any_replica_is_caught():
    """The seeded bug is the mutant that deleted the non-primary check: the usurper orders a
    request as a backup, the replicas that followed it execute it, and their view changes carry
    a certificate whose pre-prepare is not a primary's, which nobody accepts: the view change
    stalls (before the usurp mode it survived 5,000 runs of the default exploration)."""
    bug = "accept-pre-prepare-from-backup"
    res = explore(system, bug=bug, runs=40, seed=0, out=None, shrink_time=0)
    assert res.verdict == "violation", res.summary()
    assert res.violation.property == "Liveness"
    res = explore(
        system, bug=bug, runs=5, seed=0, config={"byzantine_mode": "usurp"}, out=None,
        shrink_time=0,
    )  # fmt: skip
    assert res.verdict == "violation", res.summary()
    # the same runs without the bug are clean: what fails is the weakened check
    clean = explore(system, runs=res.runs, seed=0, config={"byzantine_mode": "usurp"}, out=None)
    assert clean.verdict == "ok", clean.summary()
