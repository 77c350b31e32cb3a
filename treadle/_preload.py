"""Imported once by the worker pool's fork server: the harness and every installed system are
loaded there, so each worker forks with them instead of importing them again."""

from treadle import parallel, run  # noqa: F401
from treadle.system import all_systems

all_systems()
