"""From a trace to the data a study page draws: replay it with a recording world, then lay the
run out as lanes, steps, messages, timers, operations, fault spans, node states and the verdict.

Everything here is plain JSON-able data; :mod:`treadle.study.page` embeds it in the page and the
exports (:mod:`treadle.study.exports`) and the terminal view read it too.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from treadle import history as hist
from treadle.checkers.result import CheckResult, references
from treadle.errors import TraceMismatch
from treadle.runner import RunResult, load_and_check, replay_command, replay_trace
from treadle.study.record import RecordingWorld
from treadle.system import System
from treadle.trace import Trace

CLIENT_TYPES = ("invoke", "ok", "fail", "info")
#: history event types drawn as crash/restart spans and partition bands, not as marks
WORLD_TYPES = ("crash", "restart", "partition", "heal")


@dataclasses.dataclass
class Study:
    """A replayed trace with everything recorded: ``data`` is what the page embeds."""

    trace: Trace
    run: RunResult
    world: RecordingWorld
    data: dict[str, Any]


def _watch_checks(system: System, found: dict[str, Any]) -> System:
    """The same system, with each check wrapped to note when (which step, per-step or final)
    it first reported the violation."""

    def wrap(check: Any, final: bool) -> Any:
        def watched(world: Any) -> CheckResult | None:
            r = check(world)
            if r is not None and r.verdict == "violation" and "step" not in found:
                found["step"] = world.step_count
                found["final"] = final
            return r

        watched.__qualname__ = getattr(check, "__qualname__", "check")
        return watched

    fields = {f.name for f in dataclasses.fields(system)}
    changes = {
        name: [wrap(c, name != "invariants") for c in getattr(system, name)]
        for name in ("invariants", "final_checks", "history_checks")
        if name in fields
    }
    return dataclasses.replace(system, **changes)


def study_trace(path: str) -> Study:
    """Replay the trace at ``path`` and extract the page data. Refuses a trace whose replay
    does not give the recorded history (the page would show another run)."""
    system, trace = load_and_check(path)
    found: dict[str, Any] = {}
    run = replay_trace(_watch_checks(system, found), trace, world_cls=RecordingWorld)
    digest = hist.digest(run.history)
    if trace.history_sha256 and digest != trace.history_sha256:
        raise TraceMismatch(
            f"trace does not match system {system.name}: replaying it gives history sha256 "
            f"{digest[:12]}..., the trace recorded {trace.history_sha256[:12]}..."
        )
    world = run.world
    assert isinstance(world, RecordingWorld)
    data = build_data(path, trace, run, world, digest, found)
    return Study(trace, run, world, data)


def _lanes(world: RecordingWorld) -> list[dict[str, str]]:
    lanes = [{"id": n, "kind": "server"} for n in world.server_ids]
    lanes += [{"id": n, "kind": "client"} for n in world.client_ids]
    return lanes


def _operations(world: Any) -> list[dict[str, Any]]:
    """Client operations: an invoke paired with the next completion of the same process."""
    ops: list[dict[str, Any]] = []
    open_ops: dict[str, dict[str, Any]] = {}
    for i, ev in enumerate(world.history):
        t = ev.get("type")
        if t not in CLIENT_TYPES or "process" not in ev:
            continue
        p = str(ev["process"])
        step = world.rec_event_step[i]
        if t == "invoke":
            op = {
                "id": len(ops),
                "process": p,
                "lane": world.rec_event_lane[i],
                "f": ev.get("f"),
                "key": ev.get("key"),
                "value": ev.get("value"),
                "invoke": step,
                "invoke_event": i,
                "end": None,
                "end_event": None,
                "status": "pending",
                "output": None,
            }
            ops.append(op)
            open_ops[p] = op
        elif p in open_ops:
            op = open_ops.pop(p)
            op["end"], op["end_event"], op["status"] = step, i, t
            if t == "ok":
                op["output"] = ev.get("value")
    return ops


def _spans(world: Any, last: int) -> tuple[list[dict], list[dict]]:
    """Crash-to-restart spans per node, and partition bands (with their sides)."""
    down: list[dict[str, Any]] = []
    opened: dict[str, dict[str, Any]] = {}
    parts: list[dict[str, Any]] = []
    part: dict[str, Any] | None = None
    for i, ev in enumerate(world.history):
        t, step = ev.get("type"), world.rec_event_step[i]
        if t == "crash":
            opened[ev["node"]] = {"node": ev["node"], "from": step, "to": None}
            down.append(opened[ev["node"]])
        elif t == "restart" and ev["node"] in opened:
            opened.pop(ev["node"])["to"] = step
        elif t == "partition":
            part = {"from": step, "to": None, "sides": ev.get("sides", [])}
            parts.append(part)
        elif t == "heal" and part is not None:
            part["to"], part = step, None
    for s in down + parts:
        if s["to"] is None:
            s["to"] = last
            s["open"] = True
    return down, parts


def _patch(old: Any, new: Any) -> Any:
    """A map field that changed in a few keys is sent as ``{"$patch": {...}, "$del": [...]}``
    (a growing map of prepares or commits would otherwise be sent whole at every step)."""
    if not isinstance(old, dict) or not isinstance(new, dict) or len(new) < 4:
        return new
    patch = {k: v for k, v in new.items() if k not in old or old[k] != v}
    gone = [k for k in old if k not in new]
    if len(patch) + len(gone) > len(new) // 2:
        return new
    return {"$patch": patch, "$del": gone}


def _state_deltas(world: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The states after start in full, then per step only the fields that changed (``null``
    stands for a field that disappeared: it is then listed in ``gone``)."""
    snaps = world.rec_states
    first = snaps[0]
    deltas: list[dict[str, Any]] = []
    prev = {n: {k: json.dumps(v, sort_keys=True) for k, v in s.items()} for n, s in first.items()}
    last = first
    for snap in snaps[1:]:
        delta: dict[str, Any] = {}
        for nid, st in snap.items():
            if st is last.get(nid):
                continue  # the same object: the node was not looked at again
            enc = {k: json.dumps(v, sort_keys=True) for k, v in st.items()}
            old = prev.get(nid, {})
            changed = {
                k: _patch(last.get(nid, {}).get(k), st[k]) for k in st if old.get(k) != enc[k]
            }
            gone = [k for k in old if k not in enc]
            if changed or gone:
                delta[nid] = {"set": changed, **({"gone": gone} if gone else {})}
            prev[nid] = enc
        deltas.append(delta)
        last = snap
    return first, deltas


def event_text(ev: dict[str, Any]) -> str:
    """``type k=v ...`` without the keys every event has."""
    skip = ("index", "time", "node", "process", "type")
    rest = " ".join(f"{k}={json.dumps(v, default=repr)}" for k, v in ev.items() if k not in skip)
    return f"{ev.get('type')} {rest}".rstrip()


def step_text(data: dict[str, Any], s: dict[str, Any]) -> str:
    """What happened at a step, in words (a delivery: the message, in full)."""
    if s.get("msg") is not None:
        if "_msg_by_id" not in data:
            data["_msg_by_id"] = {m["id"]: m for m in data["messages"]}
        m = data["_msg_by_id"].get(s["msg"])
        if m is not None:
            return f"{m['src']} → {m['dst']}: {m['text']}"
    return str(s.get("text", s.get("kind", "")))


def _event_json(ev: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(ev, default=repr))


def verdict_data(
    violation: CheckResult | None,
    unknown: CheckResult | None,
    world: Any,
    found: dict[str, Any],
    last: int,
) -> dict[str, Any] | None:
    """The verdict as the page shows it. ``world``: anything with ``history``,
    ``rec_event_step`` and ``rec_event_lane`` (a recording world, or a history's view)."""
    v = violation
    if v is None:
        if unknown is not None:
            return {
                "verdict": "unknown",
                "property": unknown.property,
                "message": unknown.message,
                "step": None,
                "refs": {},
                "related": [],
            }
        return None
    details = json.loads(json.dumps(v.details, default=repr))
    refs = references(details)
    step = found.get("step")
    final = bool(found.get("final"))
    if "step" in details and isinstance(details["step"], int):
        step, final = details["step"], False  # a handler exception names its step
    related = related_events(world, refs, details)
    if final:
        step = _final_step(world, refs, details, related, last)
    return {
        "verdict": "violation",
        "property": v.property,
        "message": v.message,
        "step": step,
        "final": final,
        "refs": refs,
        "related": related,
        "details": {k: x for k, x in details.items() if k != "counterexample"},
    }


def _positions(world: Any) -> dict[Any, int]:
    """History position by event ``index``."""
    return {ev.get("index", i): i for i, ev in enumerate(world.history)}


def op_position(o: dict[str, Any], end: str, positions: dict[Any, int]) -> int | None:
    """Where an operation of a linearizability counterexample starts (``call``) or ends
    (``ret``) in the history: by the events' ``index`` (``call_index``/``ret_index``), the
    checker's own positions being in its list of client events."""
    idx = o.get(f"{end}_index")
    if idx is not None and idx in positions:
        return positions[idx]
    return None


def _final_step(
    world: Any,
    refs: dict[str, list[Any]],
    details: dict[str, Any],
    related: list[dict[str, Any]],
    last: int,
) -> int:
    """A check at the end of a run names no step: take the linearizability counterexample's
    failing point (the first return of an operation that must precede what cannot be placed),
    else the last event the verdict names, else the last step."""
    cex = details.get("counterexample")
    if isinstance(cex, dict) and cex.get("prefixes"):
        by_id = {o["id"]: o for o in cex.get("operations", [])}
        pos = _positions(world)
        rets = [
            p
            for i in cex["prefixes"][0].get("must_precede", [])
            if i in by_id
            for p in [op_position(by_id[i], "ret", pos)]
            if p is not None
        ]
        if rets:
            return int(world.rec_event_step[min(rets)])
    named = [world.rec_event_step[i] for i in refs["events"] if i < len(world.rec_event_step)]
    named += [r["step"] for r in related if r["why"] in ("operation", "event")]
    return max(named) if named else last


def related_events(
    world: Any, refs: dict[str, list[Any]], details: dict[str, Any]
) -> list[dict[str, Any]]:
    """History events the verdict names: by event index, as an operation of the
    counterexample, or a protocol event of a named node that carries a named term or index
    (Raft's commit of the entry a later leader lacks, say)."""
    out: dict[int, str] = {}
    for i in refs["events"]:
        if 0 <= i < len(world.history):
            out[i] = "event"
    cex = details.get("counterexample")
    if isinstance(cex, dict):
        by_id = {o["id"]: o for o in cex.get("operations", [])}
        positions = _positions(world)
        for oid in refs["operations"]:
            o = by_id.get(oid)
            if o is None:
                continue
            for end in ("call", "ret"):
                p = op_position(o, end, positions)
                if p is not None:
                    out.setdefault(p, "operation")
    nodes, terms, indexes = set(refs["nodes"]), set(refs["terms"]), set(refs["indexes"])
    for i, ev in enumerate(world.history):
        if ev.get("node") not in nodes or ev.get("type") in WORLD_TYPES:
            continue
        # ("index" is the event's own position in the history, not a log index)
        vals = [ev.get(k) for k in ("log_index", "seq", "version") if k in ev]
        by_index = indexes and any(x in indexes for x in vals if isinstance(x, int))
        by_term = (
            terms
            and ev.get("type") in ("became-leader", "became-candidate", "view-change", "new-view")
            and (ev.get("term") in terms or ev.get("view") in terms)
        )
        # a commit of index N commits every index below it too (Raft's commitIndex)
        by_commit = (
            ev.get("type") == "commit"
            and isinstance(ev.get("log_index"), int)
            and any(ev["log_index"] >= x for x in indexes)
            and (not terms or ev.get("term") in terms)
        )
        if by_index or by_term:
            out.setdefault(i, "names")
        elif by_commit:
            out.setdefault(i, "commits")
    rows = []
    for i in sorted(out)[:40]:
        ev = world.history[i]
        rows.append(
            {
                "event": i,
                "step": world.rec_event_step[i],
                "lane": world.rec_event_lane[i],
                "why": out[i],
                "text": event_text(ev),
            }
        )
    return rows


def build_data(
    path: str,
    trace: Trace,
    run: RunResult,
    world: RecordingWorld,
    digest: str,
    found: dict[str, Any],
) -> dict[str, Any]:
    last = world.step_count
    down, parts = _spans(world, last)
    initial, deltas = _state_deltas(world)
    events = []
    for i, ev in enumerate(world.history):
        e = _event_json(ev)
        e["_step"] = world.rec_event_step[i]
        e["_lane"] = world.rec_event_lane[i]
        events.append(e)
    meta = {
        "system": trace.system,
        "system_version": trace.system_version,
        "bug": trace.bug,
        "strategy": trace.strategy,
        "member": (trace.extra.get("strategy_run") or {}).get("member"),
        "seed": trace.seed,
        "config": trace.config,
        "history_sha256": digest,
        "recorded_sha256": trace.history_sha256,
        "steps": last,
        "choices": len(trace.choices),
        "events": len(world.history),
        "shrunk_from": trace.shrunk_from,
        "trace": path,
        "replay": replay_command(path),
        "show": f"treadle show {path} --html OUT.html",
    }
    return {
        "format": "treadle-study/1",
        "meta": meta,
        "lanes": _lanes(world),
        "steps": world.rec_steps,
        "messages": world.rec_msgs,
        "timers": world.rec_timers,
        "events": events,
        "operations": _operations(world),
        "down": down,
        "partitions": parts,
        "initial": initial,
        "deltas": deltas,
        "verdict": verdict_data(run.violation, run.unknown, world, found, last),
    }


def state_at(data: dict[str, Any], step: int) -> dict[str, dict[str, Any]]:
    """Every node's display state after ``step``, from the page data (what page.js computes)."""
    states = {n: dict(s) for n, s in data["initial"].items()}
    for delta in data["deltas"][: max(0, step)]:
        for nid, d in delta.items():
            st = dict(states.get(nid, {}))
            for k, v in d["set"].items():
                if isinstance(v, dict) and "$patch" in v:
                    m = {**st.get(k, {}), **v["$patch"]}
                    for g in v["$del"]:
                        m.pop(g, None)
                    st[k] = m
                else:
                    st[k] = v
            for k in d.get("gone", []):
                st.pop(k, None)
            states[nid] = st
    return states
