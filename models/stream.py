"""An event stream: append with an expected version, read from a version. Partitioned by stream.

Event-store operations, one stream per ``key`` (P-compositionality: streams are independent):

* ``append``: invoke value ``[expected, [event ids]]`` where ``expected`` is ``"any"``,
  ``"no-stream"`` (the stream is empty) or an exact version (0 = empty); ok value
  ``[first version, last version]``. An append whose first event id is already in the stream is
  an idempotent retry: it changes nothing and answers the versions the first attempt got.
  A wrong expected version is a ``fail`` (no effect), which never reaches the model.
* ``read``: invoke value = the first version wanted (or null: "after the snapshot"); ok value
  ``[start, [event ids from version start on]]``.

The state is the stream itself: the tuple of its event ids (version v is ``state[v - 1]``).
Operations without a key (an aggregate's command, which is made of reads and appends) do not
touch any stream: they are always legal and change nothing. Global positions span streams and
are not part of this model (the eventstore checker checks them).
"""

from __future__ import annotations

from typing import Any

from treadle.models.model import UNKNOWN, Call, Model, by_key, fmt


def init() -> Any:
    return ()


def _expected_matches(expected: Any, version: int) -> bool:
    if expected == "any":
        return True
    if expected == "no-stream":
        return version == 0
    return expected == version


def step(state: Any, inp: Call, output: Any) -> tuple[bool, Any]:
    if inp.key is None:
        return True, state  # a command: its reads and appends are the stream operations
    if inp.f == "append":
        expected, ids = inp.value
        ids = tuple(ids)
        if not ids:
            return output is UNKNOWN or _expected_matches(expected, len(state)), state
        if ids[0] in state:
            first = state.index(ids[0])
            same = state[first : first + len(ids)] == ids
            answer = (first + 1, first + len(ids))
            return same and (output is UNKNOWN or output == answer), state
        if not _expected_matches(expected, len(state)):
            return output is UNKNOWN, state  # refused: no effect, and an ok is illegal
        answer = (len(state) + 1, len(state) + len(ids))
        return output is UNKNOWN or output == answer, state + ids
    if inp.f == "read":
        if output is UNKNOWN:
            return True, state
        start, ids = output
        if start < 1 or (inp.value is not None and start != inp.value):
            return False, state
        return tuple(state[start - 1 :]) == tuple(ids), state
    return False, state


def read_only(inp: Call) -> bool:
    return inp.f == "read" or inp.key is None


def monotone(inp: Call) -> bool:
    # the order is "is a prefix of": appends only ever extend a stream
    return True


def reachable(state: Any, inp: Call, output: Any) -> bool:
    # O(1) tests only (the checker calls this very often); True is always a safe answer
    if output is UNKNOWN or inp.key is None:
        return True
    if inp.f == "append":
        ids = inp.value[1]
        first = output[0]
        if not ids or len(state) <= first - 1:
            return True
        return first >= 1 and state[first - 1] == ids[0]  # already in: only as this very op
    if inp.f == "read":
        start, ids = output
        known = len(state) - (start - 1)  # how many of the read's events the state fixes
        if start < 1 or known <= 0:
            return True
        if known > len(ids):
            return False  # the stream is already longer than the read saw
        return state[start - 1] == ids[0] and state[-1] == ids[known - 1]
    return True


def describe_operation(inp: Call, output: Any) -> str:
    out = "?" if output is UNKNOWN else fmt(output)
    if inp.key is None:
        return f"{inp.f}({fmt(inp.value)}) -> {out}"
    if inp.f == "append":
        expected, ids = inp.value
        return f"append({fmt(inp.key)}, expected {fmt(expected)}, {fmt(tuple(ids))}) -> {out}"
    return f"read({fmt(inp.key)} from {fmt(inp.value)}) -> {out}"


def describe_state(state: Any) -> str:
    return f"{len(state)} events {fmt(tuple(state))}"


MODEL = Model(
    name="stream",
    init=init,
    step=step,
    partition=by_key,
    read_only=read_only,
    monotone=monotone,
    reachable=reachable,
    describe_operation=describe_operation,
    describe_state=describe_state,
    doc="event stream: append with expected version (idempotent by event id), read from a version",
)
