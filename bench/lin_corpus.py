"""Benchmark: the Porcupine corpus, median of N runs, beside Porcupine (Go) on this machine kind.

Usage: python bench/lin_corpus.py [--runs 5]
Times include parsing each file and checking it (from events to verdict).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from treadle.checkers.linearizability import check_history  # noqa: E402
from treadle.checkers.linearizability.ops import pair_operations  # noqa: E402
from treadle.checkers.linearizability.search import search  # noqa: E402
from treadle.models import REGISTRY  # noqa: E402

from treadle.codecs import read_history  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "porcupine"
PORCUPINE = {"etcd_total_ms": 312, "kv_total_ms": 103}
HARD = ("jepsen/etcd_002.log", "jepsen/etcd_007.log", "jepsen/etcd_057.log", "jepsen/etcd_099.log")


def rows() -> list[tuple[str, str, str]]:
    out = []
    for line in (CORPUS / "EXPECTED.tsv").read_text().splitlines()[1:]:
        f = line.split("\t")
        if f[0] == "jepsen/etcd_095.log":
            continue  # Porcupine skips it too (empty)
        out.append((f[0], f[1], f[2]))
    return out


def time_file(name: str, kind: str) -> tuple[float, float, str]:
    """(wall s, CPU s of this process, verdict): CPU time is the honest figure on a busy host."""
    fmt = "porcupine-etcd" if kind == "etcd" else "porcupine-kv"
    t, c = time.perf_counter(), time.process_time()
    events = read_history(str(CORPUS / name), fmt)
    res = check_history(events, "cas-register" if kind == "etcd" else "kv")
    return time.perf_counter() - t, time.process_time() - c, res.verdict


def time_key(key: str) -> tuple[float, bool, int]:
    """One key of kv/c50-bad.txt checked alone (as Porcupine's 20 s experiment)."""
    kv = REGISTRY["kv"]
    ops, _ = pair_operations(read_history(str(CORPUS / "kv/c50-bad.txt"), "porcupine-kv"))
    part = [o for o in ops if o.input.key == key]
    t = time.perf_counter()
    g = search(part, kv, slice_steps=1 << 40)
    try:
        while True:
            next(g)
    except StopIteration as stop:
        out = stop.value
    return time.perf_counter() - t, out.linearizable, out.expansions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if not CORPUS.exists():
        sys.exit(f"corpus not found at {CORPUS}")
    per: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    verdicts: dict[str, str] = {}
    for _ in range(a.runs):
        for name, kind, expected in rows():
            dt, ct, v = time_file(name, kind)
            per.setdefault(name, []).append(dt)
            cpu.setdefault(name, []).append(ct)
            verdicts[name] = v
            want = {"ok": "ok", "illegal": "violation"}[expected]
            if v != want:
                sys.exit(f"WRONG VERDICT on {name}: {v}, expected {want}")
    med = {k: statistics.median(v) * 1000 for k, v in per.items()}
    cmed = {k: statistics.median(v) * 1000 for k, v in cpu.items()}
    print(f"median of {a.runs} runs (parse + check), ms; all {len(med)} verdicts as expected")
    print(f"{'file':28} {'wall':>9} {'cpu':>9}")
    for name in list(HARD) + sorted(k for k in med if k.startswith("kv/")):
        print(f"{name:28} {med[name]:9.2f} {cmed[name]:9.2f}")
    for label, prefix, anchor in (
        ("etcd total (102 files)", "jepsen/", PORCUPINE["etcd_total_ms"]),
        ("kv total (6 files)", "kv/", PORCUPINE["kv_total_ms"]),
    ):
        w = sum(v for k, v in med.items() if k.startswith(prefix))
        c = sum(v for k, v in cmed.items() if k.startswith(prefix))
        print(f"{label:28} {w:9.1f} {c:9.1f}   Porcupine (Go): {anchor} ms")
    for key in ("0", "9"):
        times = []
        for _ in range(a.runs):
            dt, lin, exp = time_key(key)
            times.append(dt)
        print(
            f'c50-bad key "{key}" alone: {"ok" if lin else "violation"} in '
            f"{statistics.median(times) * 1000:.2f} ms ({exp} configurations)   "
            "Porcupine (Go): undecided after 20 s"
        )


if __name__ == "__main__":
    main()
