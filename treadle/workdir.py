"""Where treadle writes its working files: ``.treadle/`` in the working directory.

Like pytest's ``.pytest_cache`` and Hypothesis's ``.hypothesis``, the folder carries its own
``.gitignore`` (``*``), so running treadle in a repository never shows up in ``git status``.
``histories/`` is the committed regression corpus: it is written only when asked (``--out``).
Trace file names are unique: a new trace never overwrites an existing file.
"""

from __future__ import annotations

import os

WORKDIR = ".treadle"
#: where explorations save counterexample traces unless told otherwise
DEFAULT_TRACES = os.path.join(WORKDIR, "traces")

_GITIGNORE = "# created by treadle: its working files are not meant to be committed\n*\n"


def ensure_gitignore(path: str) -> None:
    """If ``path`` lies inside a ``.treadle`` folder, create that folder with its ``.gitignore``."""
    parts = os.path.abspath(path).split(os.sep)
    if WORKDIR not in parts:
        return
    root = os.sep.join(parts[: len(parts) - parts[::-1].index(WORKDIR)]) or os.sep
    os.makedirs(root, exist_ok=True)
    ignore = os.path.join(root, ".gitignore")
    if not os.path.exists(ignore):
        try:
            fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_GITIGNORE)


def reserve_unique(path: str) -> str:
    """Create an empty file at ``path``, or at ``stem-2.json``, ``stem-3.json``... if taken, and
    return its name: the caller then writes it (atomically) without clobbering anything."""
    ensure_gitignore(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    stem, ext = os.path.splitext(path)
    n = 1
    while True:
        cand = path if n == 1 else f"{stem}-{n}{ext}"
        try:
            fd = os.open(cand, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            n += 1
            continue
        os.close(fd)
        return cand
