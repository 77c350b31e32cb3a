"""Keywords renamed to match the CLI's flags keep working, with a DeprecationWarning.

A Python keyword is its CLI flag without the dashes (``--time`` is ``time=``, ``--shrink-runs``
is ``shrink_runs=``, ``treadle shrink --runs`` is ``shrink(runs=...)``), so what a user learnt on
the command line is what they type in a test. Old names still work for a while: each warns once
per call site, naming the new keyword and its flag.
"""

from __future__ import annotations

import warnings
from typing import Any


def renamed(function: str, old: str, new: str, flag: str, old_value: Any, new_value: Any) -> Any:
    """The value to use for ``new``: ``old_value`` (with a DeprecationWarning) when the caller
    passed the old keyword, else ``new_value``. ``None`` means "not passed" for both; passing both
    is a TypeError, as passing one argument twice is."""
    if old_value is None:
        return new_value
    if new_value is not None:
        raise TypeError(f"{function}() got both {old}= and {new}= (the same budget): pass {new}=")
    warnings.warn(
        f"{function}({old}=...) is deprecated: use {new}=... (the CLI's {flag})",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value
