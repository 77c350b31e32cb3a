"""Campaigns and triage.

A *campaign* runs swarm configurations (every run draws its own fault mix, :class:`Swarm`) for a
time or a number of runs, on as many workers as asked, and does not stop at a failure: every
failing seed goes into the seed database (:mod:`treadle.seeds`), grouped by signature; the
first seed of a signature never seen before gets its trace saved. The report says what the
campaign covered: runs, events, faults injected per kind, the protocol event kinds it saw, and
the failures by signature (new, known, or a known-fixed one that came back: regressed).

*Triage* re-runs the known failing seeds against the code as it is now and says, per signature,
whether it is still failing, fixed, or regressed (fixed at the last triage, failing again); a
seed that now fails in another way reports that signature as new.
"""

from __future__ import annotations

import dataclasses
import time as _time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from treadle.budgets import check_budgets
from treadle.errors import TreadleError
from treadle.options import free_options
from treadle.outcome import SometimesReport, save_new_trace, trace_filename
from treadle.parallel import RunSpec, SeedRun, SeedRuns, run_seed, worker_locator
from treadle.renamed import renamed
from treadle.seeds import DEFAULT_DB, SeedDB, now_text, signature
from treadle.strategies import make_strategy
from treadle.system import System, get_system
from treadle.workdir import DEFAULT_TRACES

CAMPAIGN_STRATEGY = "swarm"
#: a campaign without --runs or --time runs this long
DEFAULT_SECONDS = 60.0
#: seeds re-run per known failure at triage (the first ones recorded)
TRIAGE_SEEDS = 5


@dataclass
class FailureGroup:
    signature: str
    property: str
    summary: str
    message: str
    #: new (never seen before this campaign), known, or regressed (known as fixed)
    status: str
    runs: int = 0
    seeds: list[int] = field(default_factory=list)
    trace: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "signature": self.signature,
            "property": self.property,
            "summary": self.summary,
            "message": self.message,
            "status": self.status,
            "runs": self.runs,
            "seeds": self.seeds,
            "trace": self.trace,
        }


@dataclass
class CampaignResult:
    verdict: str  # violation (failures found) | ok | unknown | interrupted
    system: str
    bug: str | None
    strategy: str
    seeds: tuple[int, int] | None
    runs: int
    events: int
    steps: int
    elapsed_s: float
    unknown_runs: int
    failing_runs: int
    faults: dict[str, int]
    #: protocol event kinds seen: kind -> runs that recorded it
    coverage: dict[str, int]
    failures: list[FailureGroup]
    db: str
    interrupted: bool = False
    note: str | None = None
    parallel: dict[str, Any] | None = None
    #: the sometimes-assertions reached (runs, first run and step) and those never reached
    sometimes: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "system": self.system,
            "bug": self.bug,
            "strategy": self.strategy,
            "seeds": list(self.seeds) if self.seeds else None,
            "runs": self.runs,
            "events": self.events,
            "steps": self.steps,
            "elapsed_s": round(self.elapsed_s, 3),
            "unknown_runs": self.unknown_runs,
            "failing_runs": self.failing_runs,
            "faults": self.faults,
            "coverage": self.coverage,
            "failures": [g.to_json() for g in self.failures],
            "db": self.db,
            "interrupted": self.interrupted,
            "note": self.note,
            "parallel": self.parallel,
            "sometimes": self.sometimes,
        }


def campaign(
    system: str | System,
    bug: str | None = None,
    time: float | None = None,
    runs: int | None = None,
    seed: int | None = None,
    steps: int | None = None,
    config: dict[str, Any] | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    db: str | None = None,
    out: str | None = DEFAULT_TRACES,
    progress: Callable[[int, int, int, float], None] | None = None,
    *,
    time_limit: float | None = None,
    db_path: str | None = None,
) -> CampaignResult:
    """Run a campaign (see the module's doc). ``seed`` defaults to where the last campaign of
    this system, bug and strategy stopped; without ``runs`` or ``time`` (seconds), 60 seconds.
    ``db``: the seed database (default ``.treadle/seeds.db``). The keywords are ``treadle
    campaign``'s flags; ``time_limit`` and ``db_path`` are deprecated aliases of ``time`` and
    ``db``."""
    time = renamed("campaign", "time_limit", "time", "--time", time_limit, time)
    db_path = renamed("campaign", "db_path", "db", "--db", db_path, db) or DEFAULT_DB
    check_budgets(runs, steps, time, 0.0)
    time_limit = time
    sys_obj = get_system(system) if isinstance(system, str) else system
    sys_obj.check_bug(bug)
    cfg = sys_obj.resolve_config(config)
    max_steps = steps if steps is not None else sys_obj.steps
    if runs is None and time_limit is None:
        time_limit = DEFAULT_SECONDS
    parallel = workers > 1 or executor is not None
    where = worker_locator(sys_obj) if parallel else {"name": sys_obj.name}
    started = now_text()
    start = _time.monotonic()
    deadline = start + time_limit if time_limit is not None else None
    n_runs = events = total_steps = unknown_runs = failing = 0
    faults: dict[str, int] = {}
    coverage: dict[str, int] = {}
    groups: dict[int, FailureGroup] = {}
    sometimes = SometimesReport(sys_obj.sometimes_names())
    interrupted = False
    with SeedDB(db_path) as db:
        first = seed if seed is not None else db.next_seed(sys_obj.name, bug, CAMPAIGN_STRATEGY)
        spec = RunSpec(
            where,
            cfg,
            bug,
            CAMPAIGN_STRATEGY,
            max_steps,
            first_seed=first,
            coverage=True,
            # swarm configurations draw the system's options too (PreVote, CheckQuorum, ...)
            options=free_options(sys_obj, config),
        )
        source = SeedRuns(
            sys_obj, spec, first, runs, deadline, workers, executor, stop_at_violation=False
        )
        try:
            with source:
                for r in source:
                    if r.sometimes:
                        sometimes.add_run(n_runs, r.sometimes)
                    n_runs += 1
                    events += r.events
                    total_steps += r.steps
                    unknown_runs += r.unknown
                    for kind, n in ((r.coverage or {}).get("faults") or {}).items():
                        faults[kind] = faults.get(kind, 0) + n
                    for kind in (r.coverage or {}).get("events") or {}:
                        coverage[kind] = coverage.get(kind, 0) + 1
                    if r.violation is not None:
                        failing += 1
                        _record(db, sys_obj, spec, r, groups, out)
                    if progress:
                        progress(n_runs, events, failing, _time.monotonic() - start)
        except KeyboardInterrupt:
            interrupted = True
        elapsed = _time.monotonic() - start
        result = CampaignResult(
            "ok",
            sys_obj.name,
            bug,
            CAMPAIGN_STRATEGY,
            (first, first + n_runs - 1) if n_runs else None,
            n_runs,
            events,
            total_steps,
            elapsed,
            unknown_runs,
            failing,
            dict(sorted(faults.items())),
            dict(sorted(coverage.items())),
            sorted(groups.values(), key=lambda g: (-g.runs, g.summary)),
            db_path,
            interrupted=interrupted,
            parallel=source.stats.to_json() if source.parallel else None,
            sometimes=sometimes.to_json(),
        )
        if interrupted:
            result.verdict = "interrupted"
        elif failing:
            result.verdict = "violation"
        elif n_runs == 0:
            result.verdict, result.note = "unknown", "no run completed: nothing was explored"
        elif total_steps == 0:
            result.verdict, result.note = "unknown", "no run took a step: nothing was explored"
        elif unknown_runs:
            result.verdict = "unknown"
            result.note = f"{unknown_runs} of {n_runs} runs had a check that could not decide"
        if n_runs:
            report = result.to_json()
            report.pop("failures")
            report["failures"] = [
                {"signature": g.signature, "runs": g.runs, "status": g.status}
                for g in groups.values()
            ]
            db.add_campaign(sys_obj.name, bug, CAMPAIGN_STRATEGY, first, n_runs, started, report)
    return result


def _record(
    db: SeedDB,
    system: System,
    spec: RunSpec,
    r: SeedRun,
    groups: dict[int, FailureGroup],
    out: str | None,
) -> None:
    assert r.violation is not None
    sig, summary = signature(r.violation)
    known = db.find(system.name, system.version, r.violation.property, sig)
    trace_path = None
    if out is not None and (known is None or known.trace is None):
        trace_path = save_new_trace(
            r.trace(system, spec, campaign=True),
            out,
            trace_filename(system.name, spec.bug, r.violation.property, r.seed),
        )
    failure, _ = db.record(
        system.name,
        system.version,
        r.violation,
        seed=r.seed,
        bug=spec.bug,
        strategy=spec.strategy,
        steps=spec.max_steps,
        config=r.config or spec.config,
        trace=trace_path,
    )
    group = groups.get(failure.id)
    if group is None:
        status = "new" if known is None else "known"
        if known is not None and known.status == "fixed":
            status = "regressed"
            db.set_status(failure.id, "failing")
        group = groups[failure.id] = FailureGroup(
            sig, r.violation.property, summary, r.violation.message, status
        )
    group.runs += 1
    if len(group.seeds) < 10:
        group.seeds.append(r.seed)
    group.trace = group.trace or failure.trace


# ---------------------------------------------------------------------------------------- triage
@dataclass
class TriageItem:
    status: str  # still failing | fixed | regressed | new | unreplayable
    system: str
    property: str
    signature: str
    summary: str
    seeds: list[int]
    failing_seeds: list[int]
    trace: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "system": self.system,
            "property": self.property,
            "signature": self.signature,
            "summary": self.summary,
            "seeds": self.seeds,
            "failing_seeds": self.failing_seeds,
            "trace": self.trace,
            "note": self.note,
        }


@dataclass
class TriageResult:
    verdict: str
    items: list[TriageItem]
    runs: int
    elapsed_s: float
    db: str
    note: str | None = None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for it in self.items:
            out[it.status] = out.get(it.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "runs": self.runs,
            "elapsed_s": round(self.elapsed_s, 3),
            "counts": self.counts(),
            "items": [it.to_json() for it in self.items],
            "db": self.db,
            "note": self.note,
        }


def triage(
    db: str | None = None,
    system: str | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    db_path: str | None = None,
) -> TriageResult:
    """Re-run the known failing seeds (up to :data:`TRIAGE_SEEDS` per signature) against the
    current code; update each failure's status in the database ``db`` (default
    ``.treadle/seeds.db``; ``db_path`` is its deprecated name, ``treadle triage --db``)."""
    db_path = renamed("triage", "db_path", "db", "--db", db_path, db) or DEFAULT_DB
    start = _time.monotonic()
    items: list[TriageItem] = []
    n_runs = 0
    if not _exists(db_path):
        return TriageResult(
            "unknown", [], 0, 0.0, db_path, f"no seed database at {db_path}: run a campaign first"
        )
    with SeedDB(db_path) as db:
        known = db.failures(system)
        new_items: dict[tuple[str, str, str], TriageItem] = {}  # (system, property, sig)
        for f in known:
            # each seed under its own recorded configuration: seeds of one failure may have drawn
            # other options (treadle.options); the seed that first showed it is always re-run
            sampled = db.seed_configs(f.id, TRIAGE_SEEDS) or [(f.seed, None)]
            seeds = [seed for seed, _ in sampled]
            try:
                sys_obj = get_system(f.system)
                if f.bug is not None:
                    sys_obj.check_bug(f.bug)
                cfg = sys_obj.resolve_config(f.config)
                seed_cfg = {
                    seed: cfg if c is None else sys_obj.resolve_config(c) for seed, c in sampled
                }
            except TreadleError as e:
                items.append(
                    TriageItem(
                        "unreplayable",
                        f.system,
                        f.property,
                        f.signature,
                        f.summary,
                        seeds,
                        [],
                        f.trace,
                        " ".join(str(e).split())[:300],
                    )
                )
                continue
            spec = RunSpec({"name": sys_obj.name}, cfg, f.bug, f.strategy, f.steps)
            strategy = make_strategy(f.strategy)
            failing: list[int] = []
            elsewhere: list[str] = []
            for s in seeds:
                r = run_seed(sys_obj, dataclasses.replace(spec, config=seed_cfg[s]), strategy, s)
                n_runs += 1
                if r.violation is None:
                    continue
                sig, summary = signature(r.violation)
                if (r.violation.property, sig) == (f.property, f.signature):
                    failing.append(s)
                    continue
                other = db.find(sys_obj.name, sys_obj.version, r.violation.property, sig)
                elsewhere.append(summary)
                key = (sys_obj.name, r.violation.property, sig)
                if other is None and key not in new_items:
                    db.record(
                        sys_obj.name,
                        sys_obj.version,
                        r.violation,
                        seed=s,
                        bug=f.bug,
                        strategy=f.strategy,
                        steps=f.steps,
                        config=seed_cfg[s],
                    )
                    new_items[key] = TriageItem(
                        "new", sys_obj.name, r.violation.property, sig, summary, [], []
                    )
                if key in new_items:
                    new_items[key].seeds.append(s)
                    new_items[key].failing_seeds.append(s)
            if failing:
                status = "regressed" if f.status == "fixed" else "still failing"
                db.set_status(f.id, "failing")
            else:
                status = "fixed"
                db.set_status(f.id, "fixed")
            note = None
            if elsewhere:
                note = "seeds now fail otherwise: " + "; ".join(sorted(set(elsewhere)))
            items.append(
                TriageItem(
                    status,
                    f.system,
                    f.property,
                    f.signature,
                    f.summary,
                    seeds,
                    failing,
                    f.trace,
                    note,
                )
            )
            if progress:
                progress(f"{f.summary}: {status}")
        items.extend(new_items.values())
    elapsed = _time.monotonic() - start
    result = TriageResult("ok", items, n_runs, elapsed, db_path)
    statuses = {it.status for it in items}
    if statuses & {"still failing", "regressed", "new"}:
        result.verdict = "violation"
    elif not items:
        result.verdict = "unknown"
        result.note = f"no known failures in {db_path}" + (f" for {system}" if system else "")
    elif "unreplayable" in statuses:
        result.verdict = "unknown"
        result.note = "some failures could not be re-run (see their notes)"
    return result


def _exists(path: str) -> bool:
    import os

    return os.path.exists(path)
