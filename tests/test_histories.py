"""Every saved trace under histories/ replays byte for byte and still shows its violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from treadle.runner import replay

ROOT = Path(__file__).resolve().parents[1] / "histories"
TRACES = sorted(p for p in ROOT.rglob("*.json") if not p.name.startswith("."))


def test_there_are_saved_traces():
    assert TRACES, f"no traces under {ROOT}"


@pytest.mark.parametrize("path", TRACES, ids=[str(p.relative_to(ROOT)) for p in TRACES])
def test_trace_replays(path: Path):
    r = replay(str(path))  # raises TraceMismatch if the digest differs
    assert r.matches and r.history_sha256 == r.trace.history_sha256
    recorded = r.trace.violation
    if recorded is not None:
        assert r.run.violation is not None, f"{path}: the recorded violation no longer reproduces"
        assert r.run.violation.property == recorded["property"]
