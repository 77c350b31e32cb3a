"""Command Decisions: every command does what its aggregate's specification decides.

A client runs a command (an operation of process ``<id>:cmd``: f = the command, value = its
argument, field ``stream``) by loading the aggregate (the ``loaded`` event its node ``<id>``
records), deciding, and appending (an ``append`` operation of process ``<id>``, whose invoke
lists the ``events`` with their ``type`` and ``data``). The decision is a function of the state
it loaded (:func:`checkers.eventstore.domain.decide`), and the state loaded is checked against
the full replay of its stream (Replay Equivalence), so from the history alone:

* each append a command makes after a load carries the events the specification decides from
  the loaded state, under the expected version it names;
* a command that fails after a load without appending was refused by the decide step, which
  the specification must refuse too (a withdrawal beyond the balance, a change to a
  deactivated user, ...).

Commands of other names, or whose process does not follow the ``<id>:cmd`` convention, are not
judged (a history recorded elsewhere may have neither).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from treadle.checkers.eventstore.domain import COMMANDS, decide, norm

PROPERTY = "Command Decisions"


@dataclass
class Command:
    client: str
    name: str
    arg: Any
    stream: str
    start: Any  # the invoke's index
    loaded: tuple[int, Any] | None = None  # (version, state) of the last load
    decided: bool = False  # an append was made since that load


def _fits(command: str, state: Any, arg: Any) -> bool:
    """Whether the loaded state and the argument have the shapes the specification knows."""
    if COMMANDS[command] == "account":
        return (state is None or type(state) is int) and type(arg) is int
    return state is None or (isinstance(state, list) and len(state) == 2)


class Commands:
    """Incremental: feed every history event; a violation is returned as (message, details)."""

    def __init__(self) -> None:
        self.open: dict[str, Command] = {}  # client id -> its open command

    def feed(self, ev: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        t, process = ev.get("type"), ev.get("process")
        if t == "loaded":
            c = self.open.get(str(ev.get("node")))
            if c is not None and ev.get("stream") == c.stream:
                c.loaded, c.decided = (ev.get("version"), norm(ev.get("state"))), False
            return None
        if not isinstance(process, str):
            return None
        if process.endswith(":cmd") and ev.get("f") in COMMANDS:
            client = process[: -len(":cmd")]
            if t == "invoke":
                self.open[client] = Command(
                    client, ev["f"], ev.get("value"), ev.get("stream"), ev.get("index")
                )
                return None
            c = self.open.pop(client, None)
            if t == "fail" and c is not None and c.loaded is not None and not c.decided:
                return self.refused(c, ev)
            return None
        c = self.open.get(process)
        if c is None or t != "invoke":
            return None
        if ev.get("f") == "read":
            c.loaded = None  # a reload: the next decision is made on what it returns
        elif ev.get("f") == "append" and "events" in ev and c.loaded is not None:
            if c.decided:
                return None
            c.decided = True
            return self.appended(c, ev)
        return None

    def _decision(self, c: Command) -> tuple[bool, Any]:
        assert c.loaded is not None
        version, state = c.loaded
        if not _fits(c.name, state, c.arg):
            return False, None
        try:
            return True, decide(c.name, c.arg, state, version)
        except TypeError:  # an argument of another type than the specification's
            return False, None

    def appended(self, c: Command, ev: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        known, decision = self._decision(c)
        if not known:
            return None
        value = ev.get("value")
        expected = value[0] if isinstance(value, list) and value else None
        listed = ev.get("events")
        if not isinstance(listed, list) or not all(isinstance(e, dict) for e in listed):
            return None  # not this schema's events: nothing to judge
        events = [[e.get("type"), norm(e.get("data") or {})] for e in listed]
        version, state = c.loaded  # type: ignore[misc]
        where = (
            f"{c.client}'s {c.name}({c.arg!r}) on {c.stream}, decided on the state it loaded "
            f"({state!r} at version {version})"
        )
        if decision is None:
            return (
                f"{where}, appended {events} (expected version {expected!r}), but the "
                f"specification refuses {c.name} in that state.",
                {"stream": c.stream, "command": c.name, "state": state, "version": version},
            )
        want, want_expected = decision
        if events != norm(want) or expected != want_expected:
            return (
                f"{where}, appended {events} under expected version {expected!r}; the "
                f"specification decides {norm(want)} under {want_expected!r}.",
                {"stream": c.stream, "command": c.name, "state": state, "version": version},
            )
        return None

    def refused(self, c: Command, ev: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        known, decision = self._decision(c)
        if not known or decision is None:
            return None
        version, state = c.loaded  # type: ignore[misc]
        return (
            f"{c.client}'s {c.name}({c.arg!r}) on {c.stream} was refused "
            f"({ev.get('error') or 'fail'}) without an append, on the state it loaded "
            f"({state!r} at version {version}), but the specification decides "
            f"{norm(decision[0])} under expected version {decision[1]!r} there.",
            {"stream": c.stream, "command": c.name, "state": state, "version": version},
        )
