"""Counterexamples a person can read (after Porcupine's partial linearizations and Knossos'
final paths): the longest linearizable prefixes of the failing partition, the model state
before each operation, and the operations that cannot be placed next, each with the reason.
"""

from __future__ import annotations

from typing import Any

from checkers.linearizability.ops import Operation
from checkers.linearizability.search import Outcome
from models.model import Model, fmt


def _op_json(op: Operation, model: Model, events: list[dict[str, Any]]) -> dict[str, Any]:
    def ev_index(pos: int | None) -> Any:
        if pos is None:
            return None
        return events[pos].get("index", pos)

    return {
        "id": op.id,
        "process": op.process,
        "f": op.input.f,
        "key": op.input.key,
        "status": op.status,
        "call": op.call,
        "ret": op.ret,
        "call_index": ev_index(op.call),
        "ret_index": ev_index(op.ret),
        "describe": model.describe_operation(op.input, op.output),
    }


def build_counterexample(
    part: list[Operation], model: Model, outcome: Outcome, events: list[dict[str, Any]]
) -> dict[str, Any]:
    by_id = {o.id: o for o in part}
    key = part[0].input.key if model.partition is not None else None
    prefixes = []
    for path in outcome.longest:
        st = model.init()
        steps = []
        linearized = set(path)
        for oid in path:
            op = by_id[oid]
            before = st
            _, st = model.step(st, op.input, op.output)
            steps.append({"op": oid, "state_before": model.describe_state(before)})
        # which operations could go next, and why none of them leads anywhere
        pending_completed = [o for o in part if o.completed and o.id not in linearized]
        frontier = min((o.ret for o in pending_completed), default=None)
        stuck = []
        for o in part:
            if o.id in linearized or (frontier is not None and o.call > frontier):
                continue
            legal, after = model.step(st, o.input, o.output)
            if not o.completed and (not legal or after == st):
                continue  # an unknown-outcome op that would change nothing: not a reason
            if legal:
                reason = f"legal, leads to {model.describe_state(after)}, but no way on from there"
            else:
                reason = f"illegal in state {model.describe_state(st)}"
            stuck.append({"op": o.id, "legal": bool(legal), "reason": reason})
        must = [o.id for o in pending_completed if o.ret == frontier]
        # with a lookahead-capable model: completed ops no later state can satisfy
        never = []
        if model.reachable is not None and model.monotone is not None:
            for g in pending_completed:
                if model.reachable(st, g.input, g.output):
                    continue
                resets = [
                    o
                    for o in part
                    if o.id not in linearized
                    and o.call < g.ret
                    and not model.monotone(o.input)
                    and (
                        model.restart is None
                        or model.restart(o.input) is None
                        or model.reachable(model.restart(o.input), g.input, g.output)
                    )
                ]
                if not resets:
                    never.append(g.id)
        prefixes.append(
            {
                "steps": steps,
                "final_state": model.describe_state(st),
                "next": stuck,
                "must_precede": must,
                "unsatisfiable": never[:5],  # the op that returns first among the unplaced ones
            }
        )
    return {
        "model": model.name,
        "partition_key": key,
        "operations": [_op_json(o, model, events) for o in part],
        "prefixes": prefixes,
        "expansions": outcome.expansions,
    }


def render_text(cex: dict[str, Any], short: bool = False) -> str:
    """The counterexample as plain text: the longest prefix and why it cannot be extended."""
    ops = {o["id"]: o for o in cex["operations"]}

    def name(oid: int) -> str:
        o = ops[oid]
        return f"process {o['process']}: {o['describe']} (event {o['call_index']}->{o['ret_index'] if o['ret_index'] is not None else '?'})"

    where = f" for key {fmt(cex['partition_key'])}" if cex.get("partition_key") is not None else ""
    if not cex["prefixes"]:
        return f"not linearizable{where}: no operation can be linearized first"
    p = cex["prefixes"][0]
    n_placed = len(p["steps"])
    n_total = sum(1 for o in cex["operations"] if o["status"] == "ok")
    lines = [
        f"not linearizable{where}: the longest linearizable prefix places "
        f"{n_placed} operation(s) ({n_total} completed in this partition), ending in state "
        f"{p['final_state']}; then nothing can go next:"
    ]
    nxt = p["next"]
    shown = nxt if not short else [x for x in nxt if ops[x["op"]]["status"] == "ok"][:4] or nxt[:4]
    for x in shown:
        lines.append(f"  - {name(x['op'])}: {x['reason']}")
    for oid in p.get("unsatisfiable", []):
        lines.append(
            f"  - {name(oid)} can never be satisfied: no state reachable from "
            f"{p['final_state']} before it returns fits it"
        )
    if short:
        if len(shown) < len(nxt):
            lines.append(f"  ... and {len(nxt) - len(shown)} more")
        return "\n".join(lines)
    lines.append("")
    for k, pre in enumerate(cex["prefixes"]):
        lines.append(f"longest linearizable prefix #{k + 1}:")
        for s in pre["steps"]:
            lines.append(f"  [{s['state_before']}]  {name(s['op'])}")
        lines.append(f"  [{pre['final_state']}]  <- stuck here")
        for x in pre["next"]:
            lines.append(f"    cannot place {name(x['op'])}: {x['reason']}")
    return "\n".join(lines)
