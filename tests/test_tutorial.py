"""docs/tutorial.md is tested: its code is the code of examples/register/, its commands exit
with the codes it says, and the tutorial's own tests pass."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import treadle
from treadle.cli import main

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
EXAMPLE = ROOT / "examples" / "register"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", TUTORIAL.read_text(), flags=re.S)


def test_every_code_block_is_the_examples_code():
    checked = 0
    for block in blocks("python") + blocks("toml"):
        first, _, body = block.partition("\n")
        m = re.match(r"# (examples/register/\S+)$", first)
        if not m:
            continue
        source = (ROOT / m.group(1)).read_text()
        assert body in source, f"tutorial block not found verbatim in {m.group(1)}:\n{body}"
        checked += 1
    assert checked >= 7


def test_readme_links_the_tutorial():
    assert "docs/tutorial.md" in (ROOT / "README.md").read_text()


def commands() -> list[tuple[str, int]]:
    out = []
    for block in blocks("sh"):
        for line in block.splitlines():
            if line.startswith("treadle "):
                cmd, _, comment = line.partition("#")
                m = re.match(r"\s*exit (\d+)", comment)
                assert m, f"tutorial command without its exit code: {line}"
                out.append((cmd.strip(), int(m.group(1))))
    return out


@pytest.fixture
def register_system(monkeypatch, tmp_path):
    sys.path.insert(0, str(EXAMPLE))
    try:
        import register

        treadle.register(register.system)
        monkeypatch.chdir(tmp_path)
        yield register.system
    finally:
        sys.path.remove(str(EXAMPLE))


def test_the_tutorial_commands_exit_as_it_says(register_system, capsys, tmp_path):
    cmds = commands()
    assert len(cmds) >= 7
    trace = None
    for cmd, expected in cmds:
        argv = shlex.split(cmd)[1:]
        if "TRACE" in argv:
            assert trace, "the tutorial replays TRACE before an explore saved one"
            argv = [trace if a == "TRACE" else a for a in argv]
        code = main(argv + ["--json"] if argv[0] != "show" else argv)
        out = capsys.readouterr().out
        assert code == expected, (cmd, code, out[-2000:])
        if argv[0] == "explore" and code == 1 and trace is None:
            trace = json.loads(out)["trace"]
            assert trace.startswith(".treadle/traces/register/")
    assert (tmp_path / "register.html").exists()


def test_the_tutorial_tests_pass():
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--hypothesis-seed=0",
            str(EXAMPLE),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "4 passed" in p.stdout


def test_the_example_declares_its_entry_point():
    """What `pip install -e examples/register` registers: the entry point names the module's
    system object (resolved here the way importlib.metadata's EntryPoint.load does)."""
    import importlib
    import tomllib

    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    target = meta["project"]["entry-points"]["treadle.systems"]["register"]
    module, _, attr = target.partition(":")
    assert meta["tool"]["setuptools"]["py-modules"] == [module]
    sys.path.insert(0, str(EXAMPLE))
    try:
        obj = getattr(importlib.import_module(module), attr)
    finally:
        sys.path.remove(str(EXAMPLE))
    assert isinstance(obj, treadle.System) and obj.name == "register"
