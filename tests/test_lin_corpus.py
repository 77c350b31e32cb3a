"""Conformance: every history of Porcupine's corpus gets the verdict Porcupine expects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from treadle.checkers.linearizability import check_history

from treadle.codecs import read_history

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "porcupine"
EXPECTED = CORPUS / "EXPECTED.tsv"
MODEL = {"etcd": "cas-register", "kv": "kv"}
FORMAT = {"etcd": "porcupine-etcd", "kv": "porcupine-kv"}


def _rows() -> list[tuple[str, str, str]]:
    if not EXPECTED.exists():
        return []
    rows = []
    for line in EXPECTED.read_text().splitlines()[1:]:
        f = line.split("\t")
        rows.append((f[0], f[1], f[2]))
    return rows


def _require_corpus() -> None:
    if not EXPECTED.exists():
        msg = (
            f"the Porcupine corpus is not at {CORPUS} (expected ../shared/corpus next to the repo)"
        )
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI is set, so this is an error")
        pytest.skip(msg)


def test_corpus_present_or_skipped() -> None:
    _require_corpus()
    assert len(_rows()) == 109


@pytest.mark.parametrize("name,model,expected", _rows() or [("-", "-", "-")])
def test_corpus_verdict(name: str, model: str, expected: str) -> None:
    _require_corpus()
    events = read_history(str(CORPUS / name), FORMAT[model])
    res = check_history(events, MODEL[model], timeout=60)
    want = {"ok": "ok", "illegal": "violation"}[expected]
    assert res.verdict == want, f"{name}: {res.message}"
    if want == "violation":
        cex = res.details["counterexample"]
        assert cex["prefixes"] and cex["operations"]


def test_auto_format_matches_explicit() -> None:
    _require_corpus()
    for name in ("jepsen/etcd_000.log", "kv/c01-ok.txt"):
        model = "etcd" if name.startswith("jepsen") else "kv"
        assert read_history(str(CORPUS / name)) == read_history(str(CORPUS / name), FORMAT[model])
