"""--check-determinism checks every run: in-process twice, a documented sample in other processes
under other hash seeds, and names the first divergent step."""

from __future__ import annotations

import json
import os
import random as global_random
import subprocess
import sys

import abd_register
import pytest

import treadle
import treadle.errors
from treadle import determinism
from treadle.cli import main
from treadle.errors import Nondeterminism
from treadle.node import Node
from treadle.system import Cluster, System, register

register(abd_register.system)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_sample_is_the_first_runs_then_every_tenth():
    sampled = [i for i in range(100) if determinism.in_sample(i)]
    assert sampled == list(range(20)) + [20, 30, 40, 50, 60, 70, 80, 90]
    a, b = determinism.other_hash_seeds()
    assert a != b and os.environ.get("PYTHONHASHSEED") not in (a, b)


def test_set_order_dependence_is_caught_within_20_seeds():
    # whatever this process's hash seed: the two replaying processes order the three server
    # names differently from each other, so at least one of them differs from this one
    with pytest.raises(Nondeterminism) as e:
        treadle.explore("abd", bug="set-order", runs=20, check_determinism=True, out=None)
    msg = str(e.value)
    assert "nondeterminism at step" in msg and "PYTHONHASHSEED=" in msg
    assert msg.startswith("seed ")


@pytest.mark.parametrize("parent_hash_seed", ["0", "1", "5"])
def test_set_order_dependence_is_caught_from_the_cli(tmp_path, parent_hash_seed):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import abd_register;"
        "from treadle.system import register; register(abd_register.system);"
        "from treadle.cli import main; raise SystemExit(main(sys.argv[2:]))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, os.path.dirname(__file__), "explore", "abd"]
        + ["--bug", "set-order", "--runs", "20", "--check-determinism", "--out", str(tmp_path)],
        env=dict(os.environ, PYTHONHASHSEED=parent_hash_seed),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1
    assert "nondeterminism at step" in p.stderr and "seed 0" in p.stderr


def test_deterministic_system_passes_and_every_run_is_checked(capsys):
    r = treadle.explore("abd", runs=30, check_determinism=True, out=None)
    assert r.verdict == "ok"
    det = r.extra["determinism"]
    assert det["runs_checked_in_process"] == 30
    assert det["runs_checked_in_other_processes"] == 21  # runs 0..19 and 20
    assert "deterministic: 30 runs replayed in-process" in r.summary()
    code, out, _ = cli(capsys, "explore", "example", "--runs", "3", "--check-determinism", "--json")
    assert code == 0
    assert json.loads(out)["determinism"]["runs_checked_in_process"] == 3


class Forgetful(Node):
    """Keeps state across runs in a class attribute (global state): only the run after the
    first few behaves differently, so checking run 0 alone would miss it."""

    builds = 0

    def on_start(self, ctx):
        Forgetful.builds += 1
        ctx.set_timer("t", 1)

    def on_timer(self, ctx, name):
        ctx.record("tick", late=Forgetful.builds == 9)
        if Forgetful.builds < 40:
            ctx.set_timer("t", 1)


FORGETFUL = System("forgetful", "", lambda c, b: Cluster(servers={"n1": Forgetful}), steps=5)


def test_global_state_in_a_later_run_is_caught_in_process():
    Forgetful.builds = 0
    sys_ = FORGETFUL
    with pytest.raises(Nondeterminism, match="seed (3|4): nondeterminism"):
        # runs are built twice each (run, replay): build 9 is the replay of seed 4
        treadle.explore(sys_, strategy="random", runs=10, check_determinism=True, out=None)


class Leaky(Node):
    def on_start(self, ctx):
        ctx.set_timer("t", 1)

    def on_timer(self, ctx, name):
        ctx.record("draw", v=global_random.random())
        ctx.set_timer("t", 1)


LEAKY = System("leaky2", "", lambda c, b: Cluster(servers={"n1": Leaky}), steps=5)


def test_global_random_is_caught_at_the_first_run():
    sys_ = LEAKY
    with pytest.raises(
        Nondeterminism, match="seed 7: nondeterminism at step 1: the run event .draw v="
    ):
        treadle.explore(sys_, runs=3, seed=7, check_determinism=True, out=None)


def test_a_system_a_subprocess_cannot_import_is_refused_not_skipped():
    sys_ = System("local", "", lambda c, b: abd_register.ticker.build({"raise_at": 99}, b))
    with pytest.raises(treadle.errors.TreadleError, match="cannot check determinism across"):
        treadle.explore(sys_, runs=1, check_determinism=True, out=None)


def test_hypothesis_is_derandomized_under_ci():
    from hypothesis import settings

    assert settings.get_profile("ci").derandomize is True
    if os.environ.get("CI") and not os.environ.get("HYPOTHESIS_PROFILE"):
        assert settings.default.derandomize is True


@pytest.mark.parametrize("strategy", ["bfs", "dfs"])
def test_set_order_dependence_is_caught_by_exhaustive_search(strategy):
    with pytest.raises(Nondeterminism, match="path 0: nondeterminism at step"):
        treadle.explore("abd", bug="set-order", strategy=strategy, check_determinism=True, out=None)
    ok = treadle.explore("abd", strategy=strategy, check_determinism=True, out=None)
    assert ok.verdict == "ok" and ok.extra["determinism"]["paths_sampled"] >= 1
