"""How `treadle check` scales with the length of a history: time and peak RSS.

Generated cas-register histories (JSON Lines), checked by `treadle check` in a fresh process
(its peak RSS is the child's ru_maxrss):

* sequential: one operation at a time (no concurrency): linear work is the goal;
* concurrent: 5 clients, each always busy (an operation invoked as soon as its previous one
  returns), so that no point of the history is free of open operations;

at 10^4, 10^5 and 10^6 operations, and a 200 MB sequential file (about 2 million operations),
with the ratio of each figure to the one ten times smaller. Then the shared corpus beside
Porcupine's figures on this machine (anchor, DESIGN.md): the 102 etcd histories in 312 ms in
all, the 6 kv histories in 103 ms.

Run under the shared lock:  flock /work/team/bench.lock python3 bench/lin_scaling.py [--quick]
(``--quick``: 10^4 and 10^5 only, no 200 MB case). Medians of ``--repeat`` runs (default 3;
the 10^6 and 200 MB cases run once: they take a while and vary little).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "porcupine"


def generate(path: Path, n_ops: int, concurrent: bool, seed: int = 1) -> int:
    """Write a linearizable cas-register history of ``n_ops`` operations; returns its size."""
    rng = random.Random(seed)
    value = 0
    with open(path, "w") as f:
        w = f.write
        # the register starts nil: a first write of 0 makes every later read well defined
        w('{"type":"invoke","process":0,"f":"write","value":0}\n')
        w('{"type":"ok","process":0,"f":"write","value":0}\n')
        n_ops -= 1
        if not concurrent:
            for i in range(n_ops):
                p = i % 5
                r = rng.random()
                if r < 0.5:
                    w(f'{{"type":"invoke","process":{p},"f":"read","value":null}}\n')
                    w(f'{{"type":"ok","process":{p},"f":"read","value":{value}}}\n')
                elif r < 0.8:
                    value = rng.randrange(1_000_000)
                    w(f'{{"type":"invoke","process":{p},"f":"write","value":{value}}}\n')
                    w(f'{{"type":"ok","process":{p},"f":"write","value":{value}}}\n')
                else:
                    new = rng.randrange(1_000_000)
                    w(f'{{"type":"invoke","process":{p},"f":"cas","value":[{value},{new}]}}\n')
                    w(f'{{"type":"ok","process":{p},"f":"cas","value":[{value},{new}]}}\n')
                    value = new
        else:
            # 5 busy clients: each op takes effect at some point between its invoke and its
            # return; returns are emitted in a random order among the open ops
            open_ops: list[tuple[int, str, str]] = []  # (process, f, ok line)
            idle = list(range(5))
            done = 0
            started = 0
            while done < n_ops:
                while idle and started < n_ops:
                    p = idle.pop()
                    started += 1
                    r = rng.random()
                    if r < 0.5:
                        # linearized at its invoke: reads the value as of now
                        w(f'{{"type":"invoke","process":{p},"f":"read","value":null}}\n')
                        ok = f'{{"type":"ok","process":{p},"f":"read","value":{value}}}\n'
                    else:
                        value = rng.randrange(1_000_000)
                        w(f'{{"type":"invoke","process":{p},"f":"write","value":{value}}}\n')
                        ok = f'{{"type":"ok","process":{p},"f":"write","value":{value}}}\n'
                    open_ops.append((p, "", ok))
                k = rng.randrange(len(open_ops))
                p, _, ok = open_ops.pop(k)
                w(ok)
                idle.append(p)
                done += 1
    return path.stat().st_size


def run_check(path: Path, model: str = "cas-register") -> dict:
    """`treadle check --json` in a child process: wall time, that child's peak RSS (wait4's
    rusage is the child's own), verdict."""
    cmd = [sys.executable, "-m", "treadle.cli", "check", str(path), "--model", model, "--json"]
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    res = json.loads(text) if text.strip() else {"results": [{"verdict": "error"}]}
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mib": usage.ru_maxrss / 1024,
        "verdict": res["results"][0]["verdict"],
        "code": p.returncode,
    }


def scaling(quick: bool, repeat: int) -> None:
    sizes = [10**4, 10**5] if quick else [10**4, 10**5, 10**6]
    print("## scaling (cas-register, JSON Lines; `treadle check` in a child process)")
    print("(CPU = the child's user+sys time: the machine is shared, wall time varies with load)")
    print(
        f"{'history':<12}{'ops':>9}{'MB':>7}{'CPU s':>8}{'x CPU':>7}{'wall s':>8}"
        f"{'RSS MiB':>9}{'x RSS':>7}  verdict"
    )

    def row(kind: str, n: int, size: int, runs: list[dict], prev: Any) -> tuple:
        c = statistics.median(r["cpu_s"] for r in runs)
        t = statistics.median(r["wall_s"] for r in runs)
        m = statistics.median(r["peak_mib"] for r in runs)
        rc = f"{c / prev[0]:.1f}" if prev else "-"
        rm = f"{m / prev[1]:.1f}" if prev else "-"
        print(
            f"{kind:<12}{n:>9}{size / 1e6:>7.1f}{c:>8.2f}{rc:>7}{t:>8.2f}{m:>9.0f}{rm:>7}  "
            f"{runs[0]['verdict']}"
        )
        return c, m

    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sequential", "concurrent"):
            prev = None
            for n in sizes:
                path = Path(tmp) / f"{kind}-{n}.jsonl"
                size = generate(path, n, kind == "concurrent")
                reps = repeat if n < 10**6 else 1
                prev = row(kind, n, size, [run_check(path) for _ in range(reps)], prev)
                path.unlink()
        if not quick:
            path = Path(tmp) / "sequential-200MB.jsonl"
            n = 1_810_000  # about 200 MB with this generator
            size = generate(path, n, False)
            row("200 MB seq", n, size, [run_check(path)], None)
            print("(the 200 MB bound: at most 2048 MiB peak RSS)")


def corpus(repeat: int) -> None:
    expected = CORPUS / "EXPECTED.tsv"
    if not expected.exists():
        print(f"(corpus not at {CORPUS}: skipped)")
        return
    sys.path.insert(0, str(ROOT))
    from treadle.checkers.linearizability import check_history

    from treadle.codecs import read_history

    rows = [ln.split("\t")[:3] for ln in expected.read_text().splitlines()[1:]]
    print("\n## corpus (in-process, parse + check; median of runs), beside Porcupine's figures")
    print("(the machine is shared: wall time is inflated by others' load, CPU time compares)")
    for kind, model, fmt, anchor in (
        ("etcd", "cas-register", "porcupine-etcd", 312),
        ("kv", "kv", "porcupine-kv", 103),
    ):
        files = [(name, want) for name, k, want in rows if k == kind]
        walls, cpus = [], []
        wrong = 0
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            for name, want in files:
                res = check_history(read_history(str(CORPUS / name), fmt), model, timeout=60)
                wrong += res.verdict != {"ok": "ok", "illegal": "violation"}[want]
            walls.append((time.perf_counter() - t0) * 1000)
            cpus.append((time.process_time() - c0) * 1000)
        print(
            f"{kind:<5} {len(files):>3} histories: CPU {statistics.median(cpus):6.0f} ms, wall "
            f"{statistics.median(walls):6.0f} ms   (Porcupine: {anchor} ms)"
            + (f"  WRONG VERDICTS: {wrong}" if wrong else "  all verdicts as expected")
        )
    f = CORPUS / "kv" / "c50-bad.txt"
    from treadle.checkers.linearizability.ops import pair_operations

    ops, _ = pair_operations(read_history(str(f), "porcupine-kv"))
    for key in ("0", "9"):
        part = [o for o in ops if o.input.key == key]
        for i, o in enumerate(part):
            o.id = i
        t0 = time.perf_counter()
        from treadle.checkers.linearizability import check_operations
        from treadle.models import REGISTRY

        verdict, *_ = check_operations(part, REGISTRY["kv"], timeout=60)
        print(
            f'kv/c50-bad.txt key "{key}" alone: {verdict} in '
            f"{(time.perf_counter() - t0) * 1000:.1f} ms   (Porcupine: undecided after 20 s)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-corpus", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    scaling(a.quick, a.repeat)
    if not a.no_corpus:
        corpus(a.repeat)


if __name__ == "__main__":
    main()
