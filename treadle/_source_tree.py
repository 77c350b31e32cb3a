"""``treadle`` imported from a source tree finds its sibling folders.

Installed (wheel or editable), ``treadle.impl``, ``treadle.models`` and ``treadle.checkers`` come
from the repository's ``impl/``, ``models/`` and ``checkers/`` folders, mapped by ``setup.py``. But
Python puts the working directory first on ``sys.path``, so ``python3 -m pytest`` or ``python3 -m
treadle`` run from the repository root import *this* ``treadle/`` folder rather than the installed
one, and it holds no ``impl/``: with a non-editable ``pip install .`` every import of
``treadle.checkers`` failed there. This finder maps the three names to the folders beside
``treadle/``, so a source tree is always consistent with itself (an editable install of another
worktree does not mix in its folders either; for an editable install of this tree it maps them
where the install's own finder does). Installed from a wheel, the folders are inside
``treadle/`` and the finder is not installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

FOLDERS = ("impl", "models", "checkers")


class SourceFolders(importlib.abc.MetaPathFinder):
    def __init__(self, root: Path) -> None:
        self.packages = {f"treadle.{folder}": root / folder for folder in FOLDERS}

    def find_spec(self, fullname, path=None, target=None):
        folder = self.packages.get(fullname)
        if folder is None:
            return None  # submodules resolve through the package's __path__, as usual
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def install(package_dir: Path) -> None:
    if all((package_dir / folder).is_dir() for folder in FOLDERS):
        return  # a wheel install: the folders are inside the package
    root = package_dir.parent
    if not all((root / folder / "__init__.py").is_file() for folder in FOLDERS):
        return  # not a repository checkout: leave imports alone
    if any(isinstance(f, SourceFolders) for f in sys.meta_path):
        return
    # first, so that an editable install's finder (for another worktree) does not answer
    sys.meta_path.insert(0, SourceFolders(root))


install(Path(__file__).resolve().parent)  # on import: treadle/__init__.py imports this first
