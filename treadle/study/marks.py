"""Protocol marks: how the chart draws each kind of protocol event, and the legend for them.

A protocol event (``became-leader``, ``execute``, ``opened-breaker``: whatever a node records with
``ctx.record``) is a diamond on its node's lane. The legend lists the kinds *this* page has,
each with its colour and an example taken from the run itself, so a PBFT page explains PBFT's
marks and a user's system its own, never Raft's. Some kinds carry a short label beside the
diamond (``L6``: a leader of term 6); the label's field is named in the legend.
"""

from __future__ import annotations

import html
import json
import zlib
from collections import Counter
from typing import Any

from treadle.study.extract import CLIENT_TYPES, WORLD_TYPES

#: colours of the kinds the reference systems record; any other kind gets DEFAULT_COLOR
COLORS = {
    "became-leader": "#ca8a04",
    "became-candidate": "#a16207",
    "commit": "#15803d",
    "apply": "#16a34a",
    "stepped-down": "#6b7280",
    "truncate": "#dc2626",
    "execute": "#15803d",
    "view-change": "#9333ea",
    "new-view": "#7e22ce",
}
DEFAULT_COLOR = "#0e7490"
#: colours for a kind COLORS does not know (a user's system): picked by a stable hash of its name,
#: so a kind has the same colour on every page and in every process
PALETTE = ("#0e7490", "#be185d", "#4d7c0f", "#c2410c", "#1d4ed8", "#7c2d12", "#0f766e", "#6d28d9")
#: kinds drawn with a short label: (prefix, the event field it shows)
LABELS: dict[str, tuple[str, str]] = {"became-leader": ("L", "term")}
#: kinds the legend names one by one; the rest are counted
LEGEND_KINDS = 10


def is_mark(event: dict[str, Any]) -> bool:
    return (
        "process" not in event
        and event.get("type") not in CLIENT_TYPES
        and event.get("type") not in WORLD_TYPES
    )


def color_of(kind: Any) -> str:
    if kind in COLORS:
        return COLORS[kind]
    return PALETTE[zlib.crc32(str(kind).encode()) % len(PALETTE)]


def _example(event: dict[str, Any]) -> str:
    fields = [
        f"{k}={json.dumps(v, default=repr)}"
        for k, v in event.items()
        if k not in ("index", "time", "node", "type") and not k.startswith("_")
    ]
    text = " ".join([str(event.get("type"))] + fields[:3])
    return text if len(text) <= 120 else text[:119] + "…"


def protocol_marks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per protocol event kind in ``events``, most frequent first: its colour, its
    label (prefix and field) if it has one, how many there are and the first one as text."""
    counts: Counter[str] = Counter(str(e.get("type")) for e in events if is_mark(e))
    first: dict[str, dict[str, Any]] = {}
    for e in events:
        if is_mark(e):
            first.setdefault(str(e.get("type")), e)
    out = []
    for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        prefix, field = LABELS.get(kind) or (None, None)
        example_label = None
        if prefix is not None and field is not None:
            example_label = f"{prefix}{first[kind].get(field, '')}"
        out.append(
            {
                "type": kind,
                "color": color_of(kind),
                "label": prefix,
                "field": field,
                "count": n,
                "example": _example(first[kind]),
                "example_label": example_label,
            }
        )
    return out


def _diamond(color: str) -> str:
    return f'<svg width="10" height="10"><path d="M5,0 L10,5 L5,10 L0,5 z" fill="{color}"/></svg>'


def legend_html(marks: list[dict[str, Any]]) -> str:
    """The legend's entries for protocol events: what this run recorded."""
    if not marks:
        return "<span class='marks'>no protocol events recorded</span>"
    items = []
    for m in marks[:LEGEND_KINDS]:
        label = ""
        if m["label"] is not None:
            label = f", labelled {m['example_label']}: {m['field']} {m['example_label'][len(m['label']) :]}"
        items.append(
            f"<span class='mark-kind' data-kind='{html.escape(str(m['type']))}' "
            f"title='first: {html.escape(m['example'])}'>{_diamond(m['color'])} "
            f"{html.escape(str(m['type']))} ({m['count']}{html.escape(label)})</span>"
        )
    rest = marks[LEGEND_KINDS:]
    if rest:
        items.append(
            f"<span class='mark-kind'>{_diamond(DEFAULT_COLOR)} {len(rest)} more kinds "
            f"({sum(m['count'] for m in rest)} events)</span>"
        )
    return "<span class='marks'>protocol events: " + " ".join(items) + "</span>"
