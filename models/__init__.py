"""Sequential specifications: pure step functions. No I/O, no imports from the rest.

``REGISTRY`` maps a model name (what ``treadle check --model NAME`` takes) to its
:class:`~models.model.Model`. To add a model: write ``models/<name>.py`` defining
``MODEL = Model(name=..., init=..., step=..., ...)`` (see :mod:`models.model` for the
contract) and add one entry below.
"""

from __future__ import annotations

from treadle.models import (
    cas_register,
    fifo_queue,
    kv,
    multi_register,
    mutex,
    numbered_log,
    register,
    set,
    txn_register,
)
from treadle.models.model import UNKNOWN, Call, Model, by_key
from treadle.models.stream import MODEL as STREAM_MODEL

REGISTRY: dict[str, Model] = {
    "register": register.MODEL,
    "cas-register": cas_register.MODEL,
    "etcd": cas_register.MODEL,  # Porcupine's name for the same model
    "kv": kv.MODEL,
    "txn-register": txn_register.MODEL,
    "multi-register": multi_register.MODEL,
    "mutex": mutex.MODEL,
    "fifo-queue": fifo_queue.MODEL,
    "set": set.MODEL,
    "stream": STREAM_MODEL,
    "numbered-log": numbered_log.MODEL,
}

__all__ = ["REGISTRY", "UNKNOWN", "Call", "Model", "by_key"]
