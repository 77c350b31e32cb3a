"""The determinism self-check: same system, config and choices must give the same run.

``explore --check-determinism`` checks every run twice in-process (the exploration run, then a
replay of its choice list, both with step logs) and a deterministic sample of runs in fresh
interpreters under other hash seeds, which is what catches node code that depends on ``set``
iteration order, ``hash()`` of strings or ``id()``. The sample (:func:`in_sample`): the first
:data:`FIRST_RUNS` runs of an exploration, then every :data:`EVERY`-th run, and every run that
violates a property. Sampled runs are replayed in batches of up to :data:`BATCH` runs, in two
subprocesses with two different ``PYTHONHASHSEED`` values (:func:`other_hash_seeds`), so a
dependence on hash order is caught whatever the parent's own hash seed is, unless all three
orders happen to agree. Any divergence is reported with the first step where the runs differ.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from treadle import history as hist
from treadle.errors import Nondeterminism, TreadleError
from treadle.strategies import Replay

if TYPE_CHECKING:
    from treadle.run import RunResult
    from treadle.system import System

#: every one of the first FIRST_RUNS runs is replayed in other processes...
FIRST_RUNS = 20
#: ...then every EVERY-th run (and every violating run)
EVERY = 10
#: sampled runs replayed per pair of subprocesses
BATCH = 20


def in_sample(index: int) -> bool:
    """Is the run with this index (0-based, within one exploration) replayed out of process?"""
    return index < FIRST_RUNS or index % EVERY == 0


def other_hash_seeds() -> tuple[str, str]:
    """Two fixed hash seeds, both different from this process's if it was pinned."""
    mine = os.environ.get("PYTHONHASHSEED")
    seeds = [s for s in ("1", "2", "3") if s != mine]
    return seeds[0], seeds[1]


Log = tuple[list[Any], list[str]]


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def run_log(r: RunResult) -> Log:
    """What two runs must agree on: the step log and the history, byte for byte. Memory
    addresses in default reprs (``<Msg object at 0x7f...>``) are blanked in the step log: they
    differ between runs and decide nothing."""
    steps = [[*x[:4], _ADDRESS.sub(" at 0x?", x[4])] for x in r.world.steps_log]
    return steps, [hist.encode_event(e) for e in r.history]


def log_digest(log: Log) -> str:
    """A digest of the whole run: the steps taken (which event, at which node, with what) and the
    history. Two runs can record the same history by different schedules (symmetric nodes),
    so comparing histories alone would miss a schedule that depends on hash order."""
    import hashlib

    return hashlib.sha256(json.dumps(log, separators=(",", ":")).encode()).hexdigest()


def divergence(a: Log, b: Log, first: str = "first run", second: str = "second run") -> str | None:
    """The first difference of two run logs, in words; None when they agree."""
    la, ea = a
    lb, eb = b
    for x, y in zip(la, lb):
        if x != y:
            return (
                f"nondeterminism at step {x[0]}: {first} {x[2]} {x[4]!r}, {second} {y[2]} {y[4]!r}"
            )
    for x, y in zip(ea, eb):
        if x != y:
            return f"nondeterminism in the history: {first} {x}, {second} {y}"
    if len(la) != len(lb):
        step = min(len(la), len(lb))
        return f"nondeterminism at step {step}: {first} logged {len(la)} steps, {second} {len(lb)}"
    if len(ea) != len(eb):
        return f"nondeterminism in the history: {first} has {len(ea)} events, {second} {len(eb)}"
    return None


def locate(system: System) -> dict[str, Any]:
    """How a fresh interpreter finds ``system``: its entry-point name, or the module (and file)
    that holds it at top level. A system built inside a function cannot be found."""
    from treadle.system import all_systems

    if all_systems().get(system.name) is system:
        from treadle.system import _registered_here

        if system.name not in _registered_here:
            return {"name": system.name}
    for mod in list(sys.modules.values()):
        d = getattr(mod, "__dict__", None)
        if not d:
            continue
        for attr, val in list(d.items()):
            if val is system:
                return {
                    "name": system.name,
                    "module": mod.__name__,
                    "file": getattr(mod, "__file__", None),
                    "attr": attr,
                }
    raise TreadleError(
        f"cannot check determinism across processes: system {system.name!r} is neither "
        "registered under the entry-point group treadle.systems nor a module-level object "
        "(define it at the top of a module)"
    )


class DeterminismCheck:
    """Checks the runs of one exploration; raises :class:`Nondeterminism` at the first
    divergence, naming the seed and the step."""

    def __init__(self, system: System, cfg: dict[str, Any], bug: str | None, steps: int):
        self.system, self.cfg, self.bug, self.steps = system, cfg, bug, steps
        self.where = locate(system)
        #: what a checked run is called in messages: a seed, or an exhaustive search's path
        self.unit = "seed"
        self.index = 0
        self.batch: list[tuple[int, list[int], str]] = []
        self.checked_in_process = 0
        self.checked_out_of_process = 0
        #: system options each run draws from its seed (:mod:`treadle.options`)
        self.options: dict[str, tuple[Any, ...]] = {}
        #: runs whose configuration is not their seed's own draw (a guided child runs under its
        #: parent's options), by seed
        self.configs: dict[int, dict[str, Any]] = {}

    def config_of(self, seed: int) -> dict[str, Any]:
        from treadle.options import run_config

        own = self.configs.get(seed)
        return own if own is not None else run_config(self.cfg, self.options, seed)

    def check(self, seed: int, result: RunResult, choices: list[int]) -> None:
        """``result`` was run with ``log_steps=True`` from ``choices``."""
        from treadle.run import run_once

        again = run_once(
            self.system,
            self.config_of(seed),
            self.bug,
            Replay(list(choices)),
            self.steps,
            log_steps=True,
        )
        msg = divergence(run_log(result), run_log(again), "the run", "its replay")
        if msg:
            raise Nondeterminism(f"{self.unit} {seed}: {msg}")
        self.checked_in_process += 1
        if in_sample(self.index) or result.violation is not None:
            self.batch.append((seed, list(choices), log_digest(run_log(result))))
        self.index += 1
        if len(self.batch) >= BATCH or (result.violation is not None and self.batch):
            self.flush()

    def checked_elsewhere(
        self,
        seed: int,
        sample: tuple[list[int], str] | None,
        violated: bool,
        config: dict[str, Any] | None = None,
    ) -> None:
        """A run that was compared with its replay where it ran (a worker process, see
        :func:`treadle.parallel.run_seed`): count it, and queue its (choices, whole-run digest)
        when it is in the sample replayed under other hash seeds."""
        self.checked_in_process += 1
        if sample is not None:
            if config is not None:
                self.configs[seed] = config
            self.batch.append((seed, list(sample[0]), sample[1]))
        self.index += 1
        if len(self.batch) >= BATCH or (violated and self.batch):
            self.flush()

    def report(self) -> dict[str, Any]:
        return {
            "runs_checked_in_process": self.checked_in_process,
            "runs_checked_in_other_processes": self.checked_out_of_process,
            "hash_seeds": list(other_hash_seeds()),
        }

    def finish(self) -> None:
        if self.batch:
            self.flush()

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        seeds = other_hash_seeds()
        drawn = {seed: self.config_of(seed) for seed, _, _ in batch} if self.options else {}
        jobs = [
            _start_replay(self.where, self.cfg, self.bug, self.steps, batch, hs, drawn)
            for hs in seeds
        ]
        results = [_collect_replay(job, len(batch)) for job in jobs]  # both run at once
        for hs, got in zip(seeds, results):
            for (seed, choices, digest), (other_digest, other_log) in zip(batch, got):
                if other_digest == digest:
                    continue
                from treadle.run import run_once

                here = run_once(
                    self.system,
                    self.config_of(seed),
                    self.bug,
                    Replay(list(choices)),
                    self.steps,
                    True,
                )
                msg = (
                    divergence(run_log(here), other_log, "this process", f"PYTHONHASHSEED={hs}")
                    or "the histories differ"
                )
                raise Nondeterminism(
                    f"{self.unit} {seed}: {msg} (the same choices give another run in another process: "
                    "node code depends on set or dict-of-hash iteration order, id() or global state)"
                )
        self.checked_out_of_process += len(batch)
        for seed, _, _ in batch:
            self.configs.pop(seed, None)


def _start_replay(
    where: dict[str, Any],
    cfg: dict[str, Any],
    bug: str | None,
    steps: int,
    batch: list[tuple[int, list[int], str]],
    hash_seed: str,
    configs: dict[int, dict[str, Any]] | None = None,
) -> tuple[subprocess.Popen[str], tempfile.TemporaryDirectory[str]]:
    """``configs``: the runs whose configuration is not ``cfg`` (drawn options), by seed."""
    configs = configs or {}
    job = {
        "where": where,
        "config": cfg,
        "bug": bug,
        "steps": steps,
        "runs": [
            {"choices": c, "digest": d, **({"config": configs[s]} if s in configs else {})}
            for s, c, d in batch
        ],
        "sys_path": [p for p in sys.path if p],
    }
    tmp = tempfile.TemporaryDirectory()
    path = os.path.join(tmp.name, "job.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(job, f)
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "treadle.determinism", path],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as e:
        tmp.cleanup()
        raise TreadleError(f"determinism check: cannot start a replaying process: {e}") from None
    return proc, tmp


def _collect_replay(
    job: tuple[subprocess.Popen[str], tempfile.TemporaryDirectory[str]], n: int
) -> list[tuple[str, Log]]:
    proc, tmp = job
    try:
        out, err = proc.communicate(timeout=120 + 30 * n)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise TreadleError("determinism check: the replaying process timed out") from None
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    finally:
        tmp.cleanup()
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise TreadleError(f"determinism check: the replaying process failed: {last}")
    data = json.loads(out)
    return [(r["digest"], (r["steps_log"], r["history"])) for r in data]


def _load_system(where: dict[str, Any]) -> System:
    import importlib
    import importlib.util

    from treadle.system import get_system

    if "module" not in where:
        return get_system(where["name"])
    try:
        mod = importlib.import_module(where["module"])
    except ImportError:
        if not where.get("file"):
            raise
        spec = importlib.util.spec_from_file_location(where["module"], where["file"])
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[where["module"]] = mod
        spec.loader.exec_module(mod)
    return getattr(mod, where["attr"])  # type: ignore[no-any-return]


def _main(path: str) -> None:
    """Subprocess side: replay each run of the job; print digests (and logs where they differ)."""
    with open(path, encoding="utf-8") as f:
        job = json.load(f)
    for p in reversed(job["sys_path"]):
        if p not in sys.path:
            sys.path.insert(0, p)
    from treadle.run import run_once

    system = _load_system(job["where"])
    out = []
    for r in job["runs"]:
        cfg = r.get("config", job["config"])
        res = run_once(system, cfg, job["bug"], Replay(r["choices"]), job["steps"], log_steps=True)
        log = run_log(res)
        d = log_digest(log)
        steps_log, history = log if d != r["digest"] else ([], [])
        out.append({"digest": d, "steps_log": steps_log, "history": history})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    _main(sys.argv[1])
