"""The study page: size, build time and time to first render in headless Chromium.

For the largest saved trace under histories/ (by steps) and for a 600-step, 5-node, 3-client
Raft run. "First render" is the time from navigation start until page.js has drawn the chart,
the scrubber and the state panel (``performance.now()`` when it marks the body ready). Medians
of REPEATS runs. The issue names no anchor figure for this; Porcupine's and ShiViz's pages are
the kind of thing meant (they open at once on histories of this size).

    flock /work/team/bench.lock python bench/study_page.py
"""

from __future__ import annotations

import glob
import json
import os
import statistics
import sys
import tempfile
import time

from treadle.study import trace_page
from treadle.study.sample import record_trace

REPEATS = 5
CHROMIUM = os.environ.get("TREADLE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def replayed_steps(path: str) -> int:
    from treadle.runner import replay

    return replay(path).run.world.step_count


def traces(tmp: str) -> list[tuple[str, str]]:
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "histories")
    # by the steps a replay takes (settling after the faults adds steps the trace does not count)
    saved = sorted(glob.glob(os.path.join(here, "*", "*.json")), key=replayed_steps)
    largest = saved[-1]
    t = record_trace("raft", {"nodes": 5, "clients": 3, "ops_per_client": 20}, seed=3, steps=600)
    p600 = os.path.join(tmp, "raft-5-nodes-600-steps.json")
    t.save(p600)
    return [
        (f"largest saved ({os.path.basename(largest)})", largest),
        ("raft 5 nodes, 600 steps", p600),
    ]


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        print(f"{'trace':58} {'steps':>6} {'size':>9} {'build s':>8} {'render ms':>10}")
        for label, path in traces(tmp):
            builds, renders = [], []
            html = ""
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                html = trace_page(path)
                builds.append(time.perf_counter() - t0)
            out = os.path.join(tmp, "page.html")
            with open(out, "w", encoding="utf-8") as f:
                f.write(html)
            for _ in range(REPEATS):
                page = browser.new_page(viewport={"width": 1500, "height": 950})
                page.goto("file://" + out)
                page.wait_for_selector("body[data-ready='1']", timeout=60_000)
                renders.append(int(page.get_attribute("body", "data-render-ms") or 0))
                page.close()
            steps = replayed_steps(path)
            print(
                f"{label:58} {steps:>6} {len(html.encode()) / 1e6:>7.2f}MB "
                f"{statistics.median(builds):>8.2f} {statistics.median(renders):>10}"
            )
            sys.stdout.flush()
        browser.close()
    print(json.dumps({"repeats": REPEATS}))


if __name__ == "__main__":
    main()
