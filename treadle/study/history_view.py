"""The protocol view of a recorded history (no trace to replay): ``treadle check --model raft
--html`` and ``treadle show HISTORY --html``.

Without a replay there are no messages, timers or node objects; what a history holds is drawn:
a lane per node and per client process, one row per event, protocol events as marks, client
operations as bars, crashes and partitions as spans. A node's "state" at an event is what its
events said last: for each event type, the fields of its latest such event (the term it last
became leader in, the index it last committed ...).
"""

from __future__ import annotations

import json
import re
from typing import Any

from treadle import history as hist
from treadle.checkers.result import CheckResult
from treadle.study.extract import (
    CLIENT_TYPES,
    WORLD_TYPES,
    _event_json,
    _operations,
    _spans,
    _state_deltas,
    event_text,
    verdict_data,
)


def _natural(name: str) -> tuple[Any, ...]:
    """Process 2 before process 10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


class HistoryView:
    """A history laid out like a recorded run: event i is step i + 1."""

    def __init__(self, events: list[dict[str, Any]]):
        self.history = events
        self.rec_event_step = [i + 1 for i in range(len(events))]
        self.rec_event_lane = [self._lane(e) for e in events]
        lanes: dict[str, str] = {}
        for e, lane in zip(events, self.rec_event_lane):
            if lane == "world":
                continue
            kind = "client" if e.get("type") in CLIENT_TYPES and "process" in e else "server"
            lanes.setdefault(lane, kind)
        self.server_ids = tuple(
            sorted((n for n, k in lanes.items() if k == "server"), key=_natural)
        )
        self.client_ids = tuple(
            sorted((n for n, k in lanes.items() if k == "client"), key=_natural)
        )
        self.step_count = len(events)
        self.rec_steps = [
            {
                "step": i + 1,
                "time": e.get("time", i),
                "node": self.rec_event_lane[i],
                "kind": e.get("type") if e.get("type") in WORLD_TYPES else "event",
                "text": f"{self.rec_event_lane[i]}: {event_text(e)}",
                "events": [i, i + 1],
            }
            for i, e in enumerate(events)
        ]
        self.rec_states = self._states()

    @staticmethod
    def _lane(e: dict[str, Any]) -> str:
        who = e.get("process", e.get("node", "?"))
        return str(who)

    def _states(self) -> list[dict[str, dict[str, Any]]]:
        ids = self.server_ids + self.client_ids
        cur: dict[str, dict[str, Any]] = {n: {} for n in ids}
        out = [json.loads(json.dumps(cur))]
        for e, lane in zip(self.history, self.rec_event_lane):
            if lane in cur:
                t = e.get("type")
                if t == "crash":
                    cur[lane] = {"status": "down"}
                elif t == "restart":
                    cur[lane] = {"status": "restarted"}
                else:
                    if cur[lane].get("status") == "down":
                        del cur[lane]["status"]
                    text = event_text(e)
                    cur[lane][str(t)] = text[len(str(t)) + 1 :] or "(no fields)"
            out.append(json.loads(json.dumps(cur, default=repr)))
        return out


def history_data(
    events: list[dict[str, Any]], result: CheckResult | None, source: str, model: str | None
) -> dict[str, Any]:
    view = HistoryView(events)
    last = view.step_count
    down, parts = _spans(view, last)
    initial, deltas = _state_deltas(view)
    evs = []
    for i, ev in enumerate(events):
        e = _event_json(ev)
        e["_step"], e["_lane"] = view.rec_event_step[i], view.rec_event_lane[i]
        evs.append(e)
    violation = result if result is not None and result.violated else None
    unknown = result if result is not None and result.verdict == "unknown" else None
    # a history check runs once, at the end: its step is what the verdict names
    found = {"step": last, "final": True} if violation is not None else {}
    lanes = [{"id": n, "kind": "server"} for n in view.server_ids]
    lanes += [{"id": n, "kind": "client"} for n in view.client_ids]
    meta = {
        "system": "history",
        "system_version": "",
        "bug": None,
        "strategy": "recorded",
        "member": None,
        "seed": "-",
        "config": {"model": model} if model else {},
        "history_sha256": hist.digest(events),
        "recorded_sha256": "",
        "steps": last,
        "choices": 0,
        "events": len(events),
        "shrunk_from": None,
        "trace": source,
        "replay": f"treadle check {source}" + (f" --model {model}" if model else ""),
        "show": f"treadle show {source}",
        "kind": "history",
    }
    return {
        "format": "treadle-study/1",
        "meta": meta,
        "lanes": lanes,
        "steps": view.rec_steps,
        "messages": [],
        "timers": [],
        "events": evs,
        "operations": _operations(view),
        "down": down,
        "partitions": parts,
        "initial": initial,
        "deltas": deltas,
        "verdict": verdict_data(violation, unknown, view, found, last),
    }


def render_history_page(
    events: list[dict[str, Any]], result: CheckResult | None, source: str, model: str | None
) -> str:
    from treadle.study.page import render_page

    data = history_data(events, result, source, model)
    return render_page(data, result, title=f"treadle check {source}")


def write_protocol_pages(
    items: list[tuple[str, CheckResult, list[dict[str, Any]]]], out: str, model: str | None
) -> list[str]:
    """One study page per history checked (``check --model raft|pbft|... --html OUT``): the
    first at OUT, the others beside it as OUT-2.html, OUT-3.html ..."""
    import os

    from treadle.history import atomic_write

    paths = []
    stem, ext = os.path.splitext(out)
    for k, (source, result, events) in enumerate(items):
        path = out if k == 0 else f"{stem}-{k + 1}{ext or '.html'}"
        atomic_write(path, render_history_page(events, result, source, model))
        paths.append(path)
    return paths
