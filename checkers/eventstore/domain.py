"""The aggregates' specification, written independently of the implementation in impl/.

The checker folds the log with these rules and compares what it gets with the states the system
reports (snapshots, loaded aggregates, projections). A stream whose events are all of the types
below is *known*; other streams (a real system's own event types) get the store-level checks
only.

Account: ``AccountOpened`` (balance 0), ``Deposited {amount}`` (+), ``Withdrawn {amount}`` (-);
the balance is never negative, nothing happens to an account before it is opened, and it is
opened once. User: ``UserCreated {name}`` -> [name, true], ``UserUpdated {name}``,
``UserDeactivated`` -> active false; created once, changed only while active.
"""

from __future__ import annotations

from typing import Any

KNOWN_TYPES = frozenset(
    {"AccountOpened", "Deposited", "Withdrawn", "UserCreated", "UserUpdated", "UserDeactivated"}
)


def apply(state: Any, type_: str, data: dict[str, Any]) -> tuple[Any, str | None]:
    """(state after the event, the broken domain rule or None). States: None, a balance (int),
    or [name, active]."""
    if type_ == "AccountOpened":
        if state is not None:
            return 0, "an account is opened twice"
        return 0, None
    if type_ in ("Deposited", "Withdrawn"):
        amount = data.get("amount", 0)
        if state is None or isinstance(state, list):
            return (0 if state is None else state), f"{type_} on an account that is not open"
        balance = state + amount if type_ == "Deposited" else state - amount
        if balance < 0:
            return balance, f"the balance would be {balance}"
        return balance, None
    if type_ == "UserCreated":
        if state is not None:
            return [data.get("name"), True], "a user is created twice"
        return [data.get("name"), True], None
    if type_ in ("UserUpdated", "UserDeactivated"):
        if state is None:
            return state, f"{type_} on a user that does not exist"
        name, active = state
        new = [data.get("name"), active] if type_ == "UserUpdated" else [name, False]
        if not active:
            return new, f"{type_} on a deactivated user"
        return new, None
    return state, None


#: the commands of the aggregates and the kind of stream each runs on
COMMANDS = {"deposit": "account", "withdraw": "account", "rename": "user", "deactivate": "user"}


def decide(command: str, arg: Any, state: Any, version: int) -> tuple[list[Any], Any] | None:
    """What ``command`` must do to an aggregate in ``state`` at ``version`` (docs/eventstore.md):
    the events to append as ``[type, data]`` pairs with the expected version to append them
    under, or None: the command is refused without an append.

    deposit opens the account first when it is not open (two events, expected "no-stream"),
    else deposits under "any" (deposits commute); withdraw is refused on an account that is not
    open or whose balance is below the amount; rename creates the user when there is none
    ("no-stream") and is refused on a deactivated user; deactivate is refused on a missing or
    deactivated user. Every other decision expects the version it was decided at."""
    if command == "deposit":
        if state is None:
            return [["AccountOpened", {}], ["Deposited", {"amount": arg}]], "no-stream"
        return [["Deposited", {"amount": arg}]], "any"
    if command == "withdraw":
        if state is None or state < arg:
            return None
        return [["Withdrawn", {"amount": arg}]], version
    if command == "rename":
        if state is None:
            return [["UserCreated", {"name": arg}]], "no-stream"
        if not state[1]:
            return None
        return [["UserUpdated", {"name": arg}]], version
    if command == "deactivate":
        if state is None or not state[1]:
            return None
        return [["UserDeactivated", {}]], version
    raise ValueError(f"unknown command {command!r}")


def norm(value: Any) -> Any:
    """JSON shape: tuples become lists (a live history holds tuples, a saved one lists)."""
    if isinstance(value, tuple | list):
        return [norm(v) for v in value]
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    return value
