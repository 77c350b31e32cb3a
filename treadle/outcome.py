"""What an exploration reports (:class:`ExploreResult`), and where its traces are saved."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from treadle.checkers.result import CheckResult
from treadle.trace import Trace
from treadle.workdir import reserve_unique


@dataclass
class ExploreResult:
    verdict: str  # ok | violation | unknown | interrupted
    system: str
    bug: str | None
    strategy: str
    seed: int
    runs: int
    events: int
    steps: int
    elapsed_s: float
    #: first and last seed of the runs that completed (None when none did)
    seeds: tuple[int, int] | None
    violation: CheckResult | None = None
    trace: str | None = None
    replay: str | None = None
    history_sha256: str | None = None
    unknown_runs: int = 0
    interrupted: bool = False
    shrunk: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: why the verdict is unknown or interrupted, in words
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "system": self.system,
            "bug": self.bug,
            "strategy": self.strategy,
            "seed": self.seed,
            "seeds": list(self.seeds) if self.seeds else None,
            "runs": self.runs,
            "events": self.events,
            "steps": self.steps,
            "elapsed_s": round(self.elapsed_s, 3),
            "violation": (
                {
                    "property": self.violation.property,
                    "message": self.violation.message,
                    "details": self.violation.details,
                }
                if self.violation
                else None
            ),
            "trace": self.trace,
            "replay": self.replay,
            "history_sha256": self.history_sha256,
            "unknown_runs": self.unknown_runs,
            "interrupted": self.interrupted,
            "shrunk": self.shrunk,
            "note": self.note,
            **self.extra,
        }

    def seeds_text(self) -> str:
        return f"seeds {self.seeds[0]}..{self.seeds[1]}" if self.seeds else "no seeds"

    def summary(self) -> str:
        if self.violation is not None:
            return (
                f"violation of {self.violation.property}: {self.violation.message}\n"
                f"trace: {self.trace}\nreplay: {self.replay}"
            )
        counts = (
            f"{self.runs} runs ({self.seeds_text()}), {self.events} events, {self.elapsed_s:.1f} s"
        )
        if self.verdict == "interrupted":
            return f"interrupted after {counts}"
        if self.verdict == "ok":
            det = self.extra.get("determinism")
            if det:
                counts += (
                    f"; deterministic: {det['runs_checked_in_process']} runs replayed in-process, "
                    f"{det['runs_checked_in_other_processes']} under PYTHONHASHSEED="
                    + " and ".join(det["hash_seeds"])
                )
            return f"no violation: {counts}" + self.sometimes_text()
        return f"{self.verdict}: {self.note or ''} ({counts})".replace(":  (", ": (")

    def sometimes_text(self) -> str:
        """A line on the sometimes-assertions (empty if the system has none)."""
        some = self.extra.get("sometimes")
        if not some or not (some["reached"] or some["never_reached"]):
            return ""
        n_hit, never = len(some["reached"]), some["never_reached"]
        text = f"\nsometimes-assertions: {n_hit} of {n_hit + len(never)} reached"
        if never:
            text += "; never reached: " + ", ".join(never)
        return text

    def assert_ok(self, allow_incomplete: bool = False) -> None:
        """For pytest: raise AssertionError unless the exploration ran and found nothing: a
        violation (with the replay command), an unknown verdict, an interrupted run, or an
        exhaustive search that hit a bound (unless ``allow_incomplete``) all fail."""
        if self.verdict in ("ok", "unknown") and self.extra.get("complete") is False:
            # an exhaustive search that hit a bound is unknown (exit 3) unless a check could not
            # decide either: the caller may accept "nothing found in the explored part"
            if not allow_incomplete:
                raise AssertionError(
                    f"exhaustive search incomplete: {self.extra.get('summary', '')} "
                    "(raise the bounds, or call assert_ok(allow_incomplete=True))"
                )
            if not self.extra.get("unknown_checks"):
                return
        if self.verdict != "ok":
            raise AssertionError(self.summary())


class SometimesReport:
    """Which sometimes-assertions an exploration reached: for each, the runs that hit it and the
    first (run, step); the declared or evaluated ones never hit are listed as never reached
    (a test whose premise never happens is vacuous)."""

    def __init__(self, declared: list[str] | tuple[str, ...] = ()) -> None:
        self.declared = list(declared)
        self.hits: dict[str, int] = {}
        self.first: dict[str, tuple[int, int]] = {}
        self.evaluated: set[str] = set(declared)

    def add_run(self, run: int, seen: dict[str, int | None]) -> None:
        for name, step in seen.items():
            self.evaluated.add(name)
            if step is not None:
                self.hits[name] = self.hits.get(name, 0) + 1
                self.first.setdefault(name, (run, step))

    def never(self) -> list[str]:
        return sorted(n for n in self.evaluated if n not in self.hits)

    def to_json(self) -> dict[str, Any]:
        return {
            "reached": {
                n: {
                    "runs": self.hits[n],
                    "first_run": self.first[n][0],
                    "first_step": self.first[n][1],
                }
                for n in sorted(self.hits)
            },
            "never_reached": self.never(),
            # names evaluated that the system does not declare (a typo, or a list to update)
            "undeclared": sorted(n for n in self.evaluated if n not in set(self.declared))
            if self.declared
            else [],
        }


def replay_command(path: str) -> str:
    return f"treadle replay {shlex.quote(path)}"


def trace_filename(system: str, bug: str | None, prop: str, seed: int) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in prop.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"{bug or 'nobug'}-{slug}-seed{seed}.json"


def save_new_trace(trace: Trace, out: str, filename: str) -> str:
    """Save ``trace`` as ``out/<system>/<filename>`` under a name no file has yet (``-2``, ``-3``
    ... appended when taken); inside ``.treadle/`` the folder gets its ``.gitignore``."""
    path = reserve_unique(os.path.join(out, trace.system, filename))
    trace.save(path)
    return path
