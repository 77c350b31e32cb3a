"""The mutation benchmark's mutator (bench/mutation.py): deterministic one-line mutants that
compile, applied in a scratch copy, explored in a subprocess."""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "mutation", os.path.join(ROOT, "bench", "mutation.py")
)
assert _spec is not None and _spec.loader is not None
mutation = importlib.util.module_from_spec(_spec)
sys.modules["mutation"] = mutation  # dataclasses look their module up
_spec.loader.exec_module(mutation)


def test_the_sample_is_deterministic_and_depends_on_the_seed():
    a = mutation.sample("twophase", 10, 0)
    assert a == mutation.sample("twophase", 10, 0)
    assert a != mutation.sample("twophase", 10, 1)
    assert len(a) == 10 and len({m.id for m in a}) == 10


@pytest.mark.parametrize("system", ["twophase", "raft"])
def test_every_mutant_changes_one_line_and_compiles(system):
    for m in mutation.sample(system, 15, 3):
        with tempfile.TemporaryDirectory() as scratch:
            mutation.apply(m, scratch)
            with open(os.path.join(ROOT, m.file)) as f:
                before = f.read().splitlines()
            with open(os.path.join(scratch, m.file)) as f:
                after_text = f.read()
            after = after_text.splitlines()
            compile(after_text, m.file, "exec")
            changed = [d for d in difflib.ndiff(before, after) if d.startswith(("- ", "+ "))]
            assert len(changed) == 2, (m.describe(), changed)
            assert m.replacement in changed[1]


def test_operators_cover_the_kinds_asked_for():
    ops = {m.op for m in mutation.mutation_sites("raft")}
    assert {
        "boundary",
        "negate-cmp",
        "off-by-one",
        "drop",
        "swap-args",
        "constant",
        "negate",
    } <= ops


def test_seeded_bug_branches_and_sometimes_are_not_mutated():
    for m in mutation.mutation_sites("raft"):
        assert "bug" not in m.original, m.describe()
        assert "sometimes" not in m.original, m.describe()


def test_a_mutant_is_killed_and_the_unmutated_system_survives():
    site = next(
        m
        for m in mutation.mutation_sites("twophase")
        if m.op == "swap-args" and m.original.startswith('ctx.set_timer("abort"')
    )
    killed = mutation.run_mutant(site, "twophase", ["random"], 20, 0, 120)
    assert killed["random"]["outcome"] == "killed", killed
    clean = mutation.run_mutant(None, "twophase", ["random"], 20, 0, 120)
    assert clean["random"]["outcome"] == "survived", clean
