"""Linearizability checking (Wing & Gong search, Lowe's memoization, P-compositionality).

``check_history(events, model, timeout=None) -> CheckResult``: ``model`` is a name from
``models.REGISTRY`` or a :class:`models.model.Model`. Partitions (e.g. keys of a kv history) are
searched interleaved, in slices, so that one hard partition never hides an easy violation in
another: the first violation wins. A timeout gives ``unknown``, never a guess.

On a violation, ``details`` holds the counterexample (see :mod:`.report`): the longest
linearizable prefixes of the failing partition, the model state before each operation, and the
operations that cannot be placed next.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import models
from checkers.linearizability.ops import Operation, pair_operations
from checkers.linearizability.report import build_counterexample, render_text
from checkers.linearizability.search import Outcome, search
from checkers.result import CheckResult
from models.model import Model

PROPERTY = "linearizability"


def resolve_model(model: str | Model) -> Model:
    if isinstance(model, Model):
        return model
    try:
        return models.REGISTRY[model]
    except KeyError:
        raise KeyError(
            f"unknown model {model!r}; known models: {', '.join(sorted(models.REGISTRY))}"
        ) from None


def check_operations(
    ops: list[Operation],
    model: Model,
    timeout: float | None = None,
    slice_steps: int = 2000,
) -> tuple[str, int | None, Outcome | None, list[list[Operation]], dict[str, Any]]:
    """(verdict, failing partition index, its outcome, partitions, stats)."""
    parts = model.partition(ops) if model.partition is not None else [ops]
    parts = [p for p in parts if p]
    deadline = None if timeout is None else time.monotonic() + timeout
    gens = [(k, search(p, model, slice_steps)) for k, p in enumerate(parts)]
    stats = {"partitions": len(parts), "expansions": 0, "model_steps": 0}
    gc_was = gc.isenabled()
    gc.disable()  # the search allocates many small tuples that are never cyclic
    try:
        while gens:
            still = []
            for k, g in gens:
                try:
                    next(g)
                    still.append((k, g))
                except StopIteration as stop:
                    out: Outcome = stop.value
                    stats["expansions"] += out.expansions
                    stats["model_steps"] += out.model_steps
                    if not out.linearizable:
                        return "violation", k, out, parts, stats
                if deadline is not None and time.monotonic() > deadline:
                    stats["undecided_partitions"] = len(still) + len(gens) - len(still) - 0
                    return "unknown", None, None, parts, stats
            gens = still
    finally:
        if gc_was:
            gc.enable()
    return "ok", None, None, parts, stats


def check_history(
    events: list[dict[str, Any]], model: str | Model, timeout: float | None = None
) -> CheckResult:
    """Is the history linearizable with respect to ``model``? Non-client events are ignored."""
    m = resolve_model(model)
    ops, failed = pair_operations(events)
    t0 = time.perf_counter()
    verdict, k, outcome, parts, stats = check_operations(ops, m, timeout)
    stats["elapsed_s"] = round(time.perf_counter() - t0, 6)
    stats.update(
        model=m.name,
        operations=len(ops) + len(failed),
        failed_dropped=len(failed),
        unknown_outcome=sum(1 for o in ops if not o.completed),
    )
    if verdict == "ok":
        return CheckResult.passed(
            PROPERTY,
            f"linearizable: {len(ops)} operations ({len(failed)} failed dropped, "
            f"{stats['unknown_outcome']} with unknown outcome) in {len(parts)} partition(s)",
            **stats,
        )
    if verdict == "unknown":
        return CheckResult.unknown(
            PROPERTY,
            f"undecided after the {timeout} s timeout ({stats['expansions']} configurations "
            "explored in finished partitions); try a longer --timeout",
            **stats,
        )
    assert outcome is not None and k is not None
    cex = build_counterexample(parts[k], m, outcome, events)
    cex["partition_index"] = k
    message = render_text(cex, short=True)
    return CheckResult.violation(PROPERTY, message, **stats, counterexample=cex)


__all__ = ["check_history", "check_operations", "resolve_model", "render_text", "PROPERTY"]
