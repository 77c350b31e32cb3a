"""An installed treadle has one top-level package, `treadle` (issue 17): the repository's impl/,
models/ and checkers/ folders install as treadle.impl, treadle.models and treadle.checkers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools builds in the source tree's build/, which it never empties,
    # so a module deleted from the repository would live on in every wheel built there
    source = out / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", ".treadle", "__pycache__", ".*_cache"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(out), str(source)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (found,) = out.glob("treadle-*.whl")
    return found


def test_the_wheel_has_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"treadle"}
    for folder in ("impl/raft/node.py", "models/register.py", "checkers/result.py"):
        assert f"treadle/{folder}" in names
    assert "treadle/study/page.js" in names or any(n.startswith("treadle/study/") for n in names)
    (top_level,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    entry_points = zipfile.ZipFile(wheel).read(top_level).decode()
    assert "raft = treadle.impl.raft.system:system" in entry_points


def test_every_source_folder_is_a_package_in_the_wheel(wheel):
    """A folder without __init__.py imports as a namespace package from the source tree (and
    editable installs) but find_packages leaves it out of the wheel: impl/pbft and impl/eventstore
    were missing from installed treadle, and `treadle list` said they were unavailable."""
    names = set(zipfile.ZipFile(wheel).namelist())
    checked = 0
    for folder, installed in (
        ("treadle", "treadle"),
        ("impl", "treadle/impl"),
        ("models", "treadle/models"),
        ("checkers", "treadle/checkers"),
    ):
        for source in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in source.parts:
                continue
            relative = source.relative_to(ROOT / folder).as_posix()
            assert f"{installed}/{relative}" in names, f"{folder}/{relative} is not in the wheel"
            checked += 1
    assert checked > 100
    for asset in ("page.js", "chart.js", "panel.js", "page.css"):
        assert f"treadle/study/{asset}" in names


def test_the_installed_wheel_runs_outside_the_repository(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target)]
        + [str(wheel)],
        check=True,
        capture_output=True,
    )
    installed = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")}
    assert installed - {"bin"} == {"treadle"}, installed
    env = dict(os.environ, PYTHONPATH=str(target))
    probe = (
        "import json, treadle, treadle.impl.raft.node as n, treadle.checkers.result as r;"
        "from treadle import Node, Context, System, Cluster, CheckResult;"
        "print(json.dumps([treadle.__file__, n.__file__, r.__file__]))"
    )
    files = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True
        ).stdout
    )
    assert all(f.startswith(str(target)) for f in files), files
    # every system the wheel registers loads, and from the wheel (not from a source tree an
    # editable install of this interpreter may also offer)
    probe = (
        "import json, sys; from treadle.system import all_systems, broken_systems;"
        "names = sorted(all_systems());"
        "print(json.dumps([names, broken_systems(), [sys.modules[m].__file__ for m in"
        " sorted(sys.modules) if m.startswith('treadle.impl.') and m.endswith('.system')]]))"
    )
    listed = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    names, broken, system_files = json.loads(listed.stdout)
    assert broken == {}, broken
    assert {"raft", "pbft", "kv", "eventstore", "mesh", "twophase", "example"} <= set(names)
    assert len(system_files) >= 7, system_files
    assert all(f and f.startswith(str(target)) for f in system_files), system_files
    run = subprocess.run(
        [sys.executable, "-m", "treadle", "explore", "example", "--bug", "stale-read"]
        + ["--runs", "40", "--json", "--workers", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1, run.stderr
    assert json.loads(run.stdout)["verdict"] == "violation"


def test_a_source_tree_imports_its_own_folders(tmp_path):
    """`python3 -m pytest` from the repository imports the repository's treadle/ (the working
    directory comes first on sys.path), not the installed one: after a non-editable `pip
    install .` that treadle/ has no impl/ inside, and every import of treadle.checkers failed.
    A copy of the tree must use its own impl/, models/ and checkers/, whatever else is
    installed."""
    source = tmp_path / "checkout"
    for folder in ("treadle", "impl", "models", "checkers"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    probe = (
        "import json, treadle, treadle.checkers.result as r, treadle.impl.raft.node as n,"
        " treadle.models.register as m;"
        "print(json.dumps([treadle.__file__, r.__file__, n.__file__, m.__file__]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=source, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    files = json.loads(run.stdout)
    assert all(f.startswith(str(source)) for f in files), files
