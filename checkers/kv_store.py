"""``treadle check --model kv-store``: the replicated store's durability, convergence and version
checks (:mod:`checkers.kv`). ``--model kv`` is the linearizability model of the same name."""

from treadle.checkers.kv import check_history

__all__ = ["check_history"]
