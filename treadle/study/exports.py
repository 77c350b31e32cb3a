"""Exports of a studied run to the viewers people already use.

* ``otlp``: OpenTelemetry OTLP/JSON (an ExportTraceServiceRequest): one resource (service) per
  node, a span per handler step under one root span for the run, a span link from each delivery
  to the step that sent the message; loads in Jaeger and Grafana Tempo. Trace and span ids are
  hex, as OTLP/JSON wants (not base64 as plain protobuf JSON would).
* ``shiviz``: a ShiViz log: the parsing regex on the first line, an empty delimiter line, then
  per event ``host {vector clock}`` and the event text on the next line. Vector clocks follow
  Fidge/Mattern: a node ticks its own entry at each of its steps and merges the sender's clock
  when it takes a message.
* ``perfetto``: Chrome trace-event JSON (Perfetto and chrome://tracing read it): a thread per
  lane, a complete event (``ph: X``) per step, a flow (``ph: s`` / ``ph: f``) per message.
* ``jsonl``: the history as treadle JSON Lines (what ``treadle check`` reads).
* ``edn``: the client history as Jepsen EDN op maps (what Knossos and Elle read).

Time: steps are laid out one millisecond apart (a step is one handler run; logical time, which
several steps may share, is kept as an attribute), from a fixed epoch so exports are
reproducible byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from treadle import history as hist
from treadle.study.extract import step_text

EPOCH_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z: a fixed origin, exports are reproducible
STEP_NS = 1_000_000
SHIVIZ_REGEX = r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)"
CLIENT_TYPES = ("invoke", "ok", "fail", "info")


def _step_events(data: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for e in data["events"]:
        out.setdefault(e["_step"], []).append(e)
    return out


def _plain(e: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in e.items() if not k.startswith("_")}


def _units(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The run as units of work, in order: each node's start (step 0), then one per step.
    ``lane`` is the node whose handler ran (``world`` for partitions and heals)."""
    units = []
    for lane in data["lanes"]:
        units.append({"step": 0, "lane": lane["id"], "name": "start", "time": 0, "msg": None})
    for s in data["steps"]:
        name = s["kind"]
        if s.get("msg") is not None:
            m = data["_msg_by_id"].get(s["msg"])
            if m is not None:
                name = f"{s.get('fate', 'deliver')} {m['kind']} from {m['src']}"
        elif s["kind"] == "timer":
            name = s.get("text", "timer")
        units.append(
            {
                "step": s["step"],
                "lane": s["node"],
                "name": name,
                "time": s["time"],
                "msg": s.get("msg"),
                "text": step_text(data, s),
                "fate": s.get("fate"),
            }
        )
    return units


def _index(data: dict[str, Any]) -> None:
    data.setdefault("_msg_by_id", {m["id"]: m for m in data["messages"]})


# ---------------------------------------------------------------------------------------- OTLP
def _attr(key: str, v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"key": key, "value": {"boolValue": v}}
    if isinstance(v, int):
        return {"key": key, "value": {"intValue": str(v)}}
    if isinstance(v, float):
        return {"key": key, "value": {"doubleValue": v}}
    if not isinstance(v, str):
        v = json.dumps(v, default=repr)
    return {"key": key, "value": {"stringValue": v}}


def _hex(seed: str, nbytes: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[: 2 * nbytes]


def to_otlp(data: dict[str, Any]) -> dict[str, Any]:
    _index(data)
    meta = data["meta"]
    trace_id = _hex("trace " + meta["history_sha256"] + str(meta.get("seed")), 16)
    root_id = _hex(f"{trace_id} root", 8)
    units = _units(data)
    span_of: dict[tuple[int, str], str] = {}
    for u in units:
        span_of[(u["step"], u["lane"])] = _hex(f"{trace_id} {u['step']} {u['lane']}", 8)
    by_step = _step_events(data)
    verdict = data.get("verdict") or {}
    vstep = verdict.get("step")
    last = meta["steps"]
    spans_by_service: dict[str, list[dict[str, Any]]] = {}
    root = {
        "traceId": trace_id,
        "spanId": root_id,
        "name": f"{meta['system']} run (seed {meta.get('seed')})",
        "kind": 1,
        "startTimeUnixNano": str(EPOCH_NS),
        "endTimeUnixNano": str(EPOCH_NS + (last + 1) * STEP_NS),
        "attributes": [
            _attr("treadle.system", meta["system"]),
            _attr("treadle.bug", meta.get("bug") or ""),
            _attr("treadle.seed", meta.get("seed")),
            _attr("treadle.strategy", meta.get("strategy") or ""),
            _attr("treadle.history_sha256", meta["history_sha256"]),
            _attr("treadle.replay", meta["replay"]),
        ],
        "status": {"code": 2, "message": verdict.get("property", "")} if verdict else {"code": 1},
    }
    spans_by_service.setdefault("treadle", []).append(root)
    for u in units:
        start = EPOCH_NS + u["step"] * STEP_NS
        attrs = [_attr("treadle.step", u["step"]), _attr("treadle.time", u["time"])]
        links = []
        if u["msg"] is not None:
            m = data["_msg_by_id"].get(u["msg"])
            if m is not None:
                attrs += [
                    _attr("message.kind", m["kind"]),
                    _attr("message.text", m["text"]),
                    _attr("message.src", m["src"]),
                    _attr("message.fate", m["fate"]),
                ]
                sender = span_of.get(_send_unit(data, m))
                if sender is not None:
                    links.append(
                        {
                            "traceId": trace_id,
                            "spanId": sender,
                            "attributes": [_attr("treadle.message", m["id"])],
                        }
                    )
        elif u.get("text"):
            attrs.append(_attr("treadle.event", u["text"]))
        events = []
        if u["step"] > 0:
            for e in by_step.get(u["step"], []):
                events.append(
                    {
                        "timeUnixNano": str(start + STEP_NS // 2),
                        "name": str(e.get("type")),
                        "attributes": [_attr(k, v) for k, v in _plain(e).items() if k != "type"],
                    }
                )
        span = {
            "traceId": trace_id,
            "spanId": span_of[(u["step"], u["lane"])],
            "parentSpanId": root_id,
            "name": u["name"],
            "kind": 1,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + STEP_NS * 9 // 10),
            "attributes": attrs,
            "events": events,
            "links": links,
            "status": {"code": 0},
        }
        if vstep is not None and u["step"] == vstep and u["step"] > 0:
            span["status"] = {"code": 2, "message": f"{verdict['property']}: {verdict['message']}"}
        spans_by_service.setdefault(u["lane"], []).append(span)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", service)]},
                "scopeSpans": [{"scope": {"name": "treadle", "version": "1"}, "spans": spans}],
            }
            for service, spans in spans_by_service.items()
        ]
    }


# ---------------------------------------------------------------------------------------- ShiViz
def vector_clocks(data: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, int]]]:
    """(unit, vector clock after it) for every unit of work, in order."""
    _index(data)
    clocks: dict[str, dict[str, int]] = {}
    at_send: dict[tuple[int, str], dict[str, int]] = {}
    out = []
    for u in _units(data):
        lane = u["lane"]
        vc = dict(clocks.get(lane, {}))
        if u["msg"] is not None:
            m = data["_msg_by_id"].get(u["msg"])
            taken = m is not None and m["fate"] in ("delivered", "duplicated")
            if taken:
                src_vc = at_send.get(_send_unit(data, m), {})
                for k, v in src_vc.items():
                    vc[k] = max(vc.get(k, 0), v)
        vc[lane] = vc.get(lane, 0) + 1
        clocks[lane] = vc
        at_send[(u["step"], lane)] = vc
        out.append((u, vc))
    return out


def _send_unit(data: dict[str, Any], m: dict[str, Any]) -> tuple[int, str]:
    """The unit of work that sent ``m``: its sender's step, or for a network duplicate the
    step that sent the original."""
    while m.get("dup_of") is not None and m["dup_of"] in data["_msg_by_id"]:
        m = data["_msg_by_id"][m["dup_of"]]
    return m["sent"], m["src"]


def to_shiviz(data: dict[str, Any]) -> str:
    lines = [SHIVIZ_REGEX, ""]
    by_step = _step_events(data)
    for u, vc in vector_clocks(data):
        text = u.get("text") or u["name"]
        if u["step"] == 0:
            text = f"start {u['lane']}"
        recorded = [
            f"{e.get('type')}"
            for e in by_step.get(u["step"], [])
            if u["step"] > 0 and e["_lane"] == u["lane"]
        ]
        event = f"step {u['step']} t{u['time']}: {text}" + (
            f" [{', '.join(recorded)}]" if recorded else ""
        )
        event = re.sub(r"[\r\n]+", " ", event)
        lines.append(f"{u['lane']} {json.dumps(vc, sort_keys=True)}")
        lines.append(event)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- Perfetto
def to_perfetto(data: dict[str, Any]) -> dict[str, Any]:
    _index(data)
    meta = data["meta"]
    tids = {lane["id"]: i + 1 for i, lane in enumerate(data["lanes"])}
    out: list[dict[str, Any]] = [
        {
            "ph": "M",
            "name": "process_name",
            "pid": 1,
            "tid": 0,
            "args": {"name": f"{meta['system']} seed {meta.get('seed')}"},
        },
    ]
    for lane, tid in tids.items():
        out.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": tid, "args": {"name": lane}})
        out.append(
            {
                "ph": "M",
                "name": "thread_sort_index",
                "pid": 1,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    step_us = STEP_NS // 1000
    units = _units(data)
    for u in units:
        if u["lane"] not in tids:
            tids[u["lane"]] = len(tids) + 1
            out.append(
                {
                    "ph": "M",
                    "name": "thread_name",
                    "pid": 1,
                    "tid": tids[u["lane"]],
                    "args": {"name": u["lane"]},
                }
            )
        args = {"step": u["step"], "time": u["time"], "event": u.get("text") or u["name"]}
        out.append(
            {
                "ph": "X",
                "name": u["name"],
                "cat": "step",
                "pid": 1,
                "tid": tids[u["lane"]],
                "ts": u["step"] * step_us,
                "dur": step_us * 9 // 10,
                "args": args,
            }
        )
    for m in data["messages"]:
        if m["taken"] is None or m["fate"] not in ("delivered", "duplicated"):
            continue
        sent, src_lane = _send_unit(data, m)
        if src_lane not in tids or m["dst"] not in tids:
            continue
        common = {"name": m["kind"], "cat": "message", "id": m["id"], "pid": 1}
        out.append({**common, "ph": "s", "tid": tids[src_lane], "ts": sent * step_us + 1})
        out.append(
            {**common, "ph": "f", "bp": "e", "tid": tids[m["dst"]], "ts": m["taken"] * step_us + 1}
        )
    v = data.get("verdict")
    if v and v.get("step") is not None:
        out.append(
            {
                "ph": "i",
                "s": "g",
                "name": f"violation: {v['property']}",
                "cat": "verdict",
                "pid": 1,
                "tid": 0,
                "ts": v["step"] * step_us,
                "args": {"message": v["message"]},
            }
        )
    return {
        "traceEvents": out,
        "displayTimeUnit": "ms",
        "otherData": {"replay": meta["replay"], "history_sha256": meta["history_sha256"]},
    }


# ---------------------------------------------------------------------------------------- histories
def to_jsonl(data: dict[str, Any]) -> str:
    return hist.to_jsonl(_plain(e) for e in data["events"])


_KEYWORD = re.compile(r"^[A-Za-z*+!_?<>=-][A-Za-z0-9*+!_?<>=./-]*$")


def edn(v: Any) -> str:
    """A JSON-like value as EDN (maps with keyword keys where they can be)."""
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int | float):
        return json.dumps(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + " ".join(edn(x) for x in v) + "]"
    if isinstance(v, dict):
        parts = []
        for k, x in v.items():
            key = f":{k}" if isinstance(k, str) and _KEYWORD.match(k) else edn(k)
            parts.append(f"{key} {edn(x)}")
        return "{" + ", ".join(parts) + "}"
    return json.dumps(repr(v))


def to_edn(data: dict[str, Any]) -> str:
    """Jepsen op maps, one per line: ``{:type :invoke, :f :put, :value ..., :process 0, ...}``.
    Processes become integers (Jepsen's), in sorted order of their names; the name is kept as
    ``:process-name``."""
    events = [e for e in data["events"] if e.get("type") in CLIENT_TYPES and "process" in e]
    names = sorted({str(e["process"]) for e in events})
    number = {n: i for i, n in enumerate(names)}
    lines = []
    for k, e in enumerate(events):
        f = e.get("f")
        fkey = f":{f}" if isinstance(f, str) and _KEYWORD.match(f) else edn(f)
        parts = [
            f":index {k}",
            f":time {edn(e.get('time', k))}",
            f":type :{e['type']}",
            f":process {number[str(e['process'])]}",
            f":f {fkey}",
            f":value {edn(e.get('value'))}",
        ]
        for key, v in e.items():
            if key.startswith("_") or key in ("index", "time", "type", "process", "f", "value"):
                continue
            if _KEYWORD.match(key):
                parts.append(f":{key} {edn(v)}")
        parts.append(f":process-name {edn(str(e['process']))}")
        lines.append("{" + ", ".join(parts) + "}")
    return "\n".join(lines) + ("\n" if lines else "")


FORMATS = {
    "otlp": lambda d: json.dumps(to_otlp(d), indent=1) + "\n",
    "shiviz": to_shiviz,
    "perfetto": lambda d: json.dumps(to_perfetto(d), indent=1) + "\n",
    "jsonl": to_jsonl,
    "edn": to_edn,
}


def export(data: dict[str, Any], fmt: str) -> str:
    return FORMATS[fmt](data)
