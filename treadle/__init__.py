"""treadle: deterministic simulation, exploration and checking of distributed systems.

Python API for tests::

    import treadle
    result = treadle.explore("raft", bug="figure8", time_limit=60)
    result.assert_ok()   # raises AssertionError carrying the replay command
"""

from treadle.node import Context, Node
from treadle.runner import ExploreResult, explore, replay
from treadle.shrink import shrink
from treadle.system import Cluster, System

__all__ = ["Cluster", "Context", "ExploreResult", "Node", "System", "explore", "replay", "shrink"]
__version__ = "0.1.0"
