"""The Model interface: a sequential specification as a small bundle of pure functions.

A model is what a linearizability checker compares a concurrent history against (the idea and
the shape follow Porcupine). To add one, write a module with a ``MODEL = Model(...)`` and add
one line to ``models/__init__.py``'s ``REGISTRY``.

Operations reach a model as two values:

* ``input``: a :class:`Call` ``(f, value, key)`` built from the *invoke* event: ``f`` is the
  function name (``"read"``, ``"cas"``, ``"append"``...), ``value`` the argument (lists become
  tuples so that everything is hashable), ``key`` the event's ``"key"`` field or ``None``.
* ``output``: the *ok* event's ``value`` (made hashable the same way), or :data:`UNKNOWN` when
  the operation crashed or never returned (Jepsen ``info``): then the model must accept any
  output and apply the effect the operation would have had.

``fail`` operations (definitely no effect) never reach the model.

Functions (all pure, no I/O):

``init() -> state``
    The initial state. States must be hashable and compare by value (ints, strings, tuples,
    frozensets): the checker memoizes on them.
``step(state, input, output) -> (legal, new_state)``
    Is ``output`` a legal answer to ``input`` in ``state``, and what is the state afterwards?
    Must be deterministic.
``partition(operations) -> list[list[operation]]`` (optional)
    Split a history into independent sub-histories (P-compositionality, Herlihy & Wing 1990):
    the history is linearizable iff every part is. Operations are objects with an ``input``
    attribute; :func:`by_key` partitions on ``input.key``. When a model has a partition
    function, its ``step`` only ever sees the operations of one part.
``read_only(input) -> bool`` (optional)
    True when the operation can never change the state (a read). The checker drops such
    operations when their outcome is unknown, since they constrain nothing.
``monotone(input) -> bool`` and ``reachable(state, input, output) -> bool`` (optional, both or
    neither): a pruning hint for the checker. ``monotone`` says the operation only ever moves
    the state forward in some partial order ``<=`` (an append extends a string); ``reachable``
    returns False only if no state ``>= state`` makes ``output`` legal for ``input`` (a get
    that does not start with the current string). With only monotone operations left to go
    before a completed operation, the checker abandons configurations it cannot reach.
``restart(input) -> state | None`` (optional, with the two above): for a non-monotone
    operation, the state it leaves whatever the state before (a put's value), or None if that
    depends on the state before. Lets the lookahead see past pending puts.
``unreachable_index(observers) -> (state -> int)`` (optional, with ``reachable``): a faster
    equivalent of calling ``reachable`` for many operations. ``observers`` is a list of
    ``((input, output), mask)``; the returned function gives, for a state, the union (bitwise or)
    of the masks of the observers for which ``reachable(state, input, output)`` is False.
``explain_unreachable(state, input, output) -> str`` (optional, with ``reachable``): why no
    later state fits the operation, for counterexamples ("the state is not a prefix of it").
``describe_operation(input, output) -> str`` and ``describe_state(state) -> str``
    Short human-readable text for counterexamples.
``ops`` (optional): the operation names (``f``) the model knows; the checker refuses any other
    (a typo must not read as "not linearizable"). None: any name.
``validate(input, output) -> str | None`` (optional): what is wrong with the shape of an
    operation (``output`` is UNKNOWN for the invoke), e.g. a cas value that is not
    ``[old new]``; None when it is fine. The checker refuses the history with that text, so
    ``step`` never meets a value it cannot take.
``overwrites(input) -> bool`` (optional): the operation, with an unknown outcome, is legal in
    every state and leaves a state that depends on its input only (a register's write). The
    just-in-time walk then never places two such crashed operations back to back (the second
    alone gives the same configuration with less linearized).
``make_state(value) -> state`` (optional): the state for a user's initial value (``--init``,
    a JSON value); default :func:`hashable`. ``default_init`` says what ``init()`` is, in words.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple


class _Unknown:
    """The output of an operation whose outcome is unknown (crashed, timed out, pending)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


class Call(NamedTuple):
    """The input of an operation: function name, argument, and key (``None`` if unkeyed)."""

    f: str
    value: Any = None
    key: Any = None


def hashable(value: Any) -> Any:
    """Lists become tuples and dicts sorted tuples of pairs, recursively (JSON -> hashable)."""
    if isinstance(value, list | tuple):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted(((k, hashable(v)) for k, v in value.items()), key=repr))
    if isinstance(value, set | frozenset):
        return frozenset(hashable(v) for v in value)
    return value


def by_key(operations: list[Any]) -> list[list[Any]]:
    """Partition operations by ``input.key``, keeping order; parts ordered by first appearance."""
    parts: dict[Any, list[Any]] = {}
    for op in operations:
        parts.setdefault(op.input.key, []).append(op)
    return list(parts.values())


def fmt(value: Any) -> str:
    """A value as Jepsen prints it: ``nil`` for None, strings quoted, tuples as ``[a b]``."""
    if value is None:
        return "nil"
    if value is UNKNOWN:
        return "?"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, tuple):
        return "[" + " ".join(fmt(v) for v in value) + "]"
    if isinstance(value, frozenset):
        return "#{" + " ".join(sorted(fmt(v) for v in value)) + "}"
    return str(value)


def describe_call(inp: Call, output: Any) -> str:
    """Default operation text: ``f(key, value) -> output``."""
    args = []
    if inp.key is not None:
        args.append(fmt(inp.key))
    if inp.value is not None:
        args.append(fmt(inp.value))
    text = f"{inp.f}({', '.join(args)})"
    return text + (" -> ?" if output is UNKNOWN else f" -> {fmt(output)}")


@dataclass(frozen=True)
class Model:
    """A sequential specification. See the module docstring for each function's contract."""

    name: str
    init: Callable[[], Hashable]
    step: Callable[[Any, Call, Any], tuple[bool, Any]]
    partition: Callable[[list[Any]], list[list[Any]]] | None = None
    read_only: Callable[[Call], bool] | None = None
    monotone: Callable[[Call], bool] | None = None
    reachable: Callable[[Any, Call, Any], bool] | None = None
    restart: Callable[[Call], Any] | None = None
    unreachable_index: (
        Callable[[list[tuple[tuple[Call, Any], int]]], Callable[[Any], int]] | None
    ) = None
    explain_unreachable: Callable[[Any, Call, Any], str] | None = None
    describe_operation: Callable[[Call, Any], str] = describe_call
    describe_state: Callable[[Any], str] = fmt
    doc: str = ""
    ops: tuple[str, ...] | None = None
    overwrites: Callable[[Call], bool] | None = None
    validate: Callable[[Call, Any], str | None] | None = None
    make_state: Callable[[Any], Any] | None = None
    default_init: str = ""

    def with_init(self, value: Any) -> Model:
        """This model started from the user's initial ``value`` (JSON) instead of ``init()``."""
        import dataclasses

        state = (self.make_state or hashable)(value)
        return dataclasses.replace(self, init=lambda: state)


def is_pair(v: Any) -> bool:
    return isinstance(v, tuple) and len(v) == 2
