"""The one result type every checker returns."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
VIOLATION = "violation"
UNKNOWN = "unknown"


@dataclass
class CheckResult:
    """Outcome of a check.

    ``verdict`` is ``ok``, ``violation`` or ``unknown`` (the check could not decide, e.g. a
    timeout: never a guess). ``property`` names what was checked in the paper's words
    ("Election Safety", "linearizability"). ``message`` is one paragraph a person can read;
    ``details`` is JSON-able data for reports (the witness).
    """

    verdict: str
    property: str = ""
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @builtins.property
    def ok(self) -> bool:
        return self.verdict == OK

    @builtins.property
    def violated(self) -> bool:
        return self.verdict == VIOLATION

    @classmethod
    def passed(cls, property: str = "", message: str = "", **details: Any) -> CheckResult:
        return cls(OK, property, message, dict(details))

    @classmethod
    def violation(cls, property: str, message: str, **details: Any) -> CheckResult:
        return cls(VIOLATION, property, message, dict(details))

    @classmethod
    def unknown(cls, property: str, message: str, **details: Any) -> CheckResult:
        return cls(UNKNOWN, property, message, dict(details))

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "property": self.property,
            "message": self.message,
            "details": self.details,
        }


#: detail keys that name nodes, terms, log entries / sequence numbers, history events and
#: steps. Checkers keep to these names, so the study page, the shrinker and the seed database
#: can point at what a verdict is about without parsing its message.
NODE_KEYS = ("node", "nodes", "leaders", "committed_by", "executed_by", "replica", "replicas")
TERM_KEYS = ("term", "committed_term", "terms", "view")
INDEX_KEYS = ("index", "log_index", "matching_index", "seq", "version", "expected_version")
EVENT_KEYS = ("event", "events")
STEP_KEYS = ("step",)


def references(details: dict[str, Any] | None) -> dict[str, list[Any]]:
    """The structured references of a verdict's ``details``, by what they name:
    ``{"nodes": [...], "terms": [...], "indexes": [...], "events": [...], "steps": [...],
    "operations": [...]}``. An explicit ``details["refs"]`` (a dict of the same shape) is
    merged in; nested dicts one level deep are searched too (a "first" witness, say).
    Operations are the ids of a linearizability counterexample's operations that cannot be
    placed (``details["counterexample"]``)."""
    out: dict[str, list[Any]] = {
        k: [] for k in ("nodes", "terms", "indexes", "events", "steps", "operations")
    }

    def add(kind: str, v: Any) -> None:
        vals = v if isinstance(v, list | tuple | set | frozenset) else [v]
        for x in vals:
            if isinstance(x, bool) or x is None or isinstance(x, dict | list):
                continue
            if kind != "nodes" and not isinstance(x, int):
                continue
            if kind == "nodes" and not isinstance(x, str):
                continue
            if x not in out[kind]:
                out[kind].append(x)

    def scan(d: dict[str, Any], depth: int) -> None:
        for key, v in d.items():
            if key in NODE_KEYS:
                add("nodes", v)
            elif key in TERM_KEYS:
                add("terms", v)
            elif key in INDEX_KEYS:
                add("indexes", v)
            elif key in EVENT_KEYS:
                add("events", v)
            elif key in STEP_KEYS:
                add("steps", v)
            elif key == "entries" and isinstance(v, dict):
                add("nodes", list(v))  # node -> entry
            elif isinstance(v, dict) and depth == 0 and key not in ("counterexample", "refs"):
                scan(v, 1)

    d = details or {}
    scan(d, 0)
    explicit = d.get("refs")
    if isinstance(explicit, dict):
        for kind in out:
            if kind in explicit:
                add(kind, explicit[kind])
    cex = d.get("counterexample")
    if isinstance(cex, dict) and cex.get("prefixes"):
        first = cex["prefixes"][0]
        # the ops that must go before the failing point, then those that could go next, and
        # the ones that block them
        add("operations", first.get("must_precede", []))
        for x in first.get("next", []):
            add("operations", [x.get("op"), x.get("blocked_by"), x.get("still_illegal")])
    return out
