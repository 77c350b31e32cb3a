"""Linearizability checking (Wing & Gong search, Lowe's memoization, P-compositionality).

``check_history(events, model, timeout=None, init=..., key=None, max_memory=None)`` ->
``CheckResult``: ``model`` is a name from ``models.REGISTRY`` or a :class:`models.model.Model`.

* **Keys** (P-compositionality, Herlihy & Wing): operations carrying a key (an event field
  ``key``, or jepsen.independent's ``[key value]`` tuple values for single-object models) are
  checked as independent sub-histories, one per key; ``details["keys"]`` has one verdict per
  key. ``key`` checks one key only. ``kv`` and ``stream`` key their own operations.
* **Initial state**: ``init`` (a JSON value) replaces the model's default initial state, for
  every key (``--init 0`` is Knossos' ``(register 0)``).
* Partitions are searched interleaved, in slices, so that one hard key never hides an easy
  violation in another: the first violation wins. Each partition is cut into segments where no
  operation is open (:mod:`.segments`), so a history without concurrency is linear work.
* Bounds: ``timeout`` (seconds) and ``max_memory`` (bytes of resident memory, default
  :data:`DEFAULT_MEMORY_SHARE` of the machine's RAM) end the search with ``unknown``, never a
  guess and never an out-of-memory kill.

On a violation, ``details`` holds the counterexample (see :mod:`.report`): the longest
linearizable prefixes of the failing segment, the model state before each operation, and the
operations that cannot be placed next.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterable
from typing import Any

from treadle.checkers.linearizability.ops import Operation, pair_operations
from treadle.checkers.linearizability.report import build_counterexample, render_text
from treadle.checkers.linearizability.segments import PartitionOutcome, check_partition
from treadle.checkers.result import CheckResult
from treadle.models.model import Model, by_key, fmt

from treadle import models
from treadle.errors import TreadleError

PROPERTY = "linearizability"
DEFAULT_MEMORY_SHARE = 0.5  # of physical RAM, when no max_memory is given
NO_INIT: Any = object()  # "use the model's own initial state"


def resolve_model(model: str | Model) -> Model:
    if isinstance(model, Model):
        return model
    try:
        return models.REGISTRY[model]
    except KeyError:
        raise KeyError(
            f"unknown model {model!r}; known models: {', '.join(sorted(models.REGISTRY))}"
        ) from None


def with_init(model: Model, init: Any) -> Model:
    if init is NO_INIT:
        return model
    try:
        return model.with_init(init)
    except (TypeError, ValueError) as e:
        raise TreadleError(f"--init {init!r} does not fit model {model.name}: {e}") from None


def default_max_memory() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(total * DEFAULT_MEMORY_SHARE)


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def key_matches(key: Any, wanted: str) -> bool:
    return key is not None and (str(key) == wanted or fmt(key) == wanted)


def check_operations(
    ops: list[Operation],
    model: Model,
    timeout: float | None = None,
    slice_steps: int = 2000,
    max_memory: int | None = None,
) -> tuple[str, int | None, PartitionOutcome | None, list[list[Operation]], dict[str, Any]]:
    """(verdict, failing partition index, its outcome, partitions, stats).

    ``stats["per_partition"]``: each partition's verdict (ok, violation, or unknown when the
    search stopped before deciding it: timeout, memory bound, or another partition's
    violation already decided the history; see ``stats["stopped"]``).
    """
    parts = (model.partition or by_key)(ops)
    parts = [p for p in parts if p]
    deadline = None if timeout is None else time.monotonic() + timeout
    mem_limit = default_max_memory() if max_memory is None else max_memory
    gens = [(k, check_partition(p, model, slice_steps)) for k, p in enumerate(parts)]
    verdicts: list[str] = ["unknown"] * len(parts)
    stats: dict[str, Any] = {
        "partitions": len(parts),
        "expansions": 0,
        "model_steps": 0,
        "segments": 0,
        "per_partition": verdicts,
    }
    found: tuple[int, PartitionOutcome] | None = None
    started = time.monotonic()
    grace_until = None  # after a violation: a little more time to decide the other keys
    next_mem = 0.0
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
                    out: PartitionOutcome = stop.value
                    stats["expansions"] += out.expansions
                    stats["model_steps"] += out.model_steps
                    stats["segments"] += out.segments
                    verdicts[k] = "ok" if out.linearizable else "violation"
                    if not out.linearizable and found is None:
                        found = (k, out)
                        # decide what else is quick (per-key verdicts), at most doubling
                        # the time spent so far and never past a second
                        spent = time.monotonic() - started
                        grace_until = time.monotonic() + min(1.0, spent)
                now = time.monotonic()
                if not still and all(x[0] <= k for x in gens):
                    continue  # everything is decided: no bound applies any more
                if deadline is not None and now > deadline:
                    if found is None:
                        stats["stopped"] = f"the {timeout} s timeout"
                        return "unknown", None, None, parts, stats
                    still.extend(x for x in gens if x[0] > k)
                    gens = []
                    break
                if grace_until is not None and now > grace_until:
                    still.extend(x for x in gens if x[0] > k)
                    gens = []
                    break
                if now >= next_mem:
                    next_mem = now + 0.05
                    if rss_bytes() > mem_limit:
                        if found is None:
                            stats["stopped"] = (
                                f"the memory bound ({mem_limit >> 20} MiB resident; --max-memory)"
                            )
                            return "unknown", None, None, parts, stats
                        still.extend(x for x in gens if x[0] > k)
                        gens = []
                        break
            if gens:
                gens = still
            elif still:
                stats["stopped"] = "a violation was found in another key"
                break
    finally:
        if gc_was:
            gc.enable()
    if found is not None:
        return "violation", found[0], found[1], parts, stats
    return "ok", None, None, parts, stats


def check_history(
    events: Iterable[dict[str, Any]],
    model: str | Model,
    timeout: float | None = None,
    init: Any = NO_INIT,
    key: str | None = None,
    max_memory: int | None = None,
    independent: bool | None = None,
    source: str = "<history>",
    with_lines: bool = False,
    keep_events: list[dict[str, Any]] | None = None,
) -> CheckResult:
    """Is the history linearizable with respect to ``model``? Non-client events are ignored.

    ``events``: event dicts (or (line, event) pairs with ``with_lines``, as
    :func:`treadle.codecs.iter_history` yields them). Bad input raises
    :class:`treadle.errors.InputError`. ``keep_events``: a list that receives the events (for
    the HTML page); without it they are not kept, so memory is the operations'.
    """
    m = with_init(resolve_model(model), init)
    if keep_events is not None:
        events = _keep(events, keep_events, with_lines)
    # millions of small acyclic objects: the cyclic collector would rescan them again and again
    gc_was = gc.isenabled()
    gc.disable()
    try:
        ops, failed = pair_operations(events, source, m, independent, with_lines)
    finally:
        if gc_was:
            gc.enable()
    if key is not None:
        keys_seen = sorted({str(o.input.key) for o in ops + failed if o.input.key is not None})
        ops = [o for o in ops if key_matches(o.input.key, key)]
        failed = [o for o in failed if key_matches(o.input.key, key)]
        if not ops and not failed:
            shown = ", ".join(keys_seen[:10]) + (" ..." if len(keys_seen) > 10 else "")
            raise TreadleError(
                f"{source}: no operations with key {key!r}; the keys are: {shown or 'none'}"
            )
        for i, o in enumerate(ops):
            o.id = i
    t0 = time.perf_counter()
    verdict, k, pout, parts, stats = check_operations(ops, m, timeout, max_memory=max_memory)
    stats["elapsed_s"] = round(time.perf_counter() - t0, 6)
    per = stats.pop("per_partition")
    stats.update(
        model=m.name,
        operations=len(ops) + len(failed),
        failed_dropped=len(failed),
        unknown_outcome=sum(1 for o in ops if not o.completed),
    )
    keyed = any(p[0].input.key is not None for p in parts)
    if keyed:
        stats["keys"] = [
            {"key": p[0].input.key, "verdict": v, "operations": len(p)} for p, v in zip(parts, per)
        ]
    n_keys = f" in {len(parts)} key(s)" if keyed else ""
    if verdict == "ok":
        return CheckResult.passed(
            PROPERTY,
            f"linearizable: {len(ops)} operations ({len(failed)} failed dropped, "
            f"{stats['unknown_outcome']} with unknown outcome){n_keys}",
            **stats,
        )
    if verdict == "unknown":
        decided = sum(1 for v in per if v == "ok")
        return CheckResult.unknown(
            PROPERTY,
            f"undecided: stopped by {stats['stopped']} with {decided} of {len(parts)} "
            f"partition(s) linearizable and no violation found ({stats['expansions']} "
            "configurations explored in finished partitions); try a longer --timeout or a "
            "larger --max-memory",
            **stats,
        )
    assert pout is not None and k is not None and pout.failing is not None
    assert pout.outcome is not None
    cex = build_counterexample(pout.failing, m, pout.outcome, [])
    cex["partition_index"] = k
    if keyed:
        cex["partition_key"] = parts[k][0].input.key
    message = render_text(cex, short=True)
    if keyed and len(parts) > 1:
        bad = [e for e in stats["keys"] if e["verdict"] == "violation"]
        message += (
            f"\n({len(bad)} of {len(parts)} keys not linearizable"
            + (
                f"; {sum(1 for e in stats['keys'] if e['verdict'] == 'unknown')} undecided"
                if "stopped" in stats
                else ""
            )
            + ")"
        )
    return CheckResult.violation(PROPERTY, message, **stats, counterexample=cex)


def _keep(events: Iterable[Any], into: list[dict[str, Any]], with_lines: bool) -> Iterable[Any]:
    for e in events:
        into.append(e[1] if with_lines else e)
        yield e


__all__ = [
    "check_history",
    "check_operations",
    "resolve_model",
    "render_text",
    "PROPERTY",
    "NO_INIT",
    "DEFAULT_MEMORY_SHARE",
]
