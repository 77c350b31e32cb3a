"""Counterexamples a person can read (after Porcupine's partial linearizations and Knossos'
final paths): the longest linearizable prefixes of the failing partition, the model state
before each operation, and the operations that cannot be placed next, each with the reason.
"""

from __future__ import annotations

from typing import Any

from treadle.checkers.linearizability.ops import Operation
from treadle.checkers.linearizability.search import Outcome
from treadle.models.model import Model, fmt


def _op_json(op: Operation, model: Model) -> dict[str, Any]:
    return {
        "id": op.id,
        "process": op.process,
        "f": op.input.f,
        "key": op.input.key,
        "status": op.status,
        "call": op.call,
        "ret": op.ret,
        "call_index": op.call_index,
        "ret_index": op.ret_index if op.ret is not None else None,
        "line": op.line,
        "describe": model.describe_operation(op.input, op.output),
    }


def _short(text: str, limit: int = 60) -> str:
    """Long values (kv strings grow to hundreds of characters) cut in the middle."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}…{text[-12:]} ({len(text)} chars)"


def _blocked(
    part: list[Operation], model: Model, linearized: set[int], state: Any, first: bool = True
) -> Any:
    """The search's lookahead, for explanations: the completed read-only operations still to be
    placed that no state reachable from ``state`` can satisfy, with no pending state-resetting
    operation (e.g. a put) that may go before them. With ``first``, the one that returns first
    and the reason, else a list of (op, reason); None if there is none."""
    if model.reachable is None or model.monotone is None:
        return None
    out = []
    pending = [o for o in part if o.id not in linearized]
    resetting = [
        (o, None if model.restart is None else model.restart(o.input))
        for o in pending
        if not model.monotone(o.input)
    ]
    for g in sorted((o for o in pending if o.completed), key=lambda o: o.ret):
        if model.read_only is not None and not model.read_only(g.input):
            continue
        if model.reachable(state, g.input, g.output):
            continue
        if any(
            o.call < g.ret and (rs is None or model.reachable(rs, g.input, g.output))
            for o, rs in resetting
        ):
            continue
        if model.explain_unreachable is not None:
            why = model.explain_unreachable(state, g.input, g.output)
        else:
            why = (
                f"no state reachable from {_short(model.describe_state(state))} fits it, and "
                "no operation that resets the state can go before it"
            )
        if first:
            return g, why
        out.append((g, why))
    return out or None


def build_counterexample(
    part: list[Operation], model: Model, outcome: Outcome, events: Any = None
) -> dict[str, Any]:
    """``part``: the operations of the failing segment; ``events`` is unused (kept for callers
    of the older signature)."""
    by_id = {o.id: o for o in part}
    key = part[0].input.key if model.partition is not None else None
    prefixes = []
    for path in outcome.longest:
        st = outcome.start
        steps = []
        linearized = set(path) | set(outcome.pre)
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
            entry: dict[str, Any] = {"op": o.id, "legal": bool(legal)}
            if legal:
                blocked = _blocked(part, model, linearized | {o.id}, after)
                if blocked is not None:
                    g, why = blocked
                    entry["blocked_by"] = g.id
                    reason = (
                        f"legal, leads to {_short(model.describe_state(after))}, but then "
                        f"{{op:{g.id}}} can no longer be satisfied: {why}"
                    )
                else:
                    reason = (
                        f"legal, leads to {_short(model.describe_state(after))}, but no way "
                        "on from there"
                    )
                    # a hint: the op that must go first (it returns first) is illegal there too
                    still = [
                        g
                        for g in pending_completed
                        if g.ret == frontier
                        and g.id != o.id
                        and not model.step(after, g.input, g.output)[0]
                    ]
                    if still:
                        g = still[0]
                        entry["still_illegal"] = g.id
                        reason += f" ({{op:{g.id}}}, which returns first, is illegal there too)"
            else:
                reason = f"illegal in state {_short(model.describe_state(st))}"
            entry["reason"] = reason
            stuck.append(entry)
        must = [o.id for o in pending_completed if o.ret == frontier]
        # with a lookahead-capable model: completed ops no later state can satisfy
        never = []
        blocked = _blocked(part, model, linearized, st, first=False)
        if blocked is not None:
            never = [g.id for g, _ in blocked]  # type: ignore[union-attr]
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
        "operations": [_op_json(o, model) for o in part],
        "prefixes": prefixes,
        "expansions": outcome.expansions,
    }


def render_text(cex: dict[str, Any], short: bool = False) -> str:
    """The counterexample as plain text: the longest prefix and why it cannot be extended."""
    ops = {o["id"]: o for o in cex["operations"]}

    def name(oid: int) -> str:
        o = ops[oid]
        return f"process {o['process']}: {o['describe']} (event {o['call_index']}->{o['ret_index'] if o['ret_index'] is not None else '?'})"

    def reason(x: dict[str, Any]) -> str:
        r = x["reason"]
        for field in ("blocked_by", "still_illegal"):
            if field in x:
                r = r.replace(f"{{op:{x[field]}}}", name(x[field]))
        return r

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
    if short:
        # completed ops first, and one per distinct blocking operation before repeats
        pool = [x for x in nxt if ops[x["op"]]["status"] == "ok"] or nxt
        firsts, seen_b = [], set()
        for x in pool:
            if x.get("blocked_by") not in seen_b:
                seen_b.add(x.get("blocked_by"))
                firsts.append(x)
        shown = (firsts + [x for x in pool if x not in firsts])[:4]
    else:
        shown = nxt
    for x in shown:
        lines.append(f"  - {name(x['op'])}: {reason(x)}")
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
            lines.append(f"    cannot place {name(x['op'])}: {reason(x)}")
    return "\n".join(lines)
