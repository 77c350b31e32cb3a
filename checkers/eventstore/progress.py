"""Progress after faults stop: once the faults stop, the event store serves its clients.

A binding runs a fault-free *tail* after the run (heal, restart, nothing lost) in which each
client gets more commands (``impl/eventstore/system.py``: ``tail_commands``). In it:

* every client finishes every command it has, left over from the run or given by the tail;
* every store request a client makes after the faults stopped is answered within the client's
  timeout: with nothing lost, none is given up on (``info``) and none needs a resend. A resend
  is not recorded; a request answered later than its timeout after its invocation needed one.

Judged from the history (the store requests: operations with a ``key``, f ``read``/``append``)
and the clients' final work as plain data; a tail cut short before its bound is not judged.
"""

from __future__ import annotations

from typing import Any

from treadle.checkers.result import CheckResult

PROGRESS = "Progress after faults stop"


def command_bound(config: dict[str, Any]) -> int:
    """Ticks one command may take in a fault-free world, generously: a think, then every
    conflict round's read and append, each with all its tries."""
    tries = int(config["retries"]) + 1
    rounds = int(config["conflict_retries"]) + 1
    return int(config["think_max"]) + 1 + rounds * 2 * tries * int(config["client_timeout"])


def round_trip(config: dict[str, Any]) -> int:
    """The longest a store request can take without faults: a message each way, each up to
    ``latency_max`` late by the scheduler's ``window``, and a group commit (which may itself
    be taken a window late). A client timeout shorter than this resends in a fault-free world
    too, so the per-request part is judged only when the timeout is at least this."""
    hop = int(config["latency_max"]) + int(config["window"])
    return 2 * hop + int(config["group_commit_delay"]) + int(config["window"])


def check_progress(
    history: list[dict[str, Any]],
    quiet_since: int,
    now: int,
    timeout: int | None,
    work_left: dict[str, tuple[str | None, str | None, int]],
    bound: int,
) -> CheckResult | None:
    """``work_left``: per client, (its open command or None, that command's stream, commands it
    has not started) at the end of the tail; ``bound``: ticks a command may take; ``timeout``:
    the clients' timeout, None when requests are not judged (see :func:`round_trip`)."""
    invoked: dict[Any, dict[str, Any]] = {}
    for ev in history if timeout is not None else ():
        if ev.get("f") not in ("read", "append") or "key" not in ev:
            continue
        p = ev.get("process")
        if ev.get("type") == "invoke":
            invoked[repr(p)] = ev
            continue
        inv = invoked.pop(repr(p), None)
        if inv is None or not inv.get("time", -1) > quiet_since:
            continue  # sent before the faults stopped: it may have been lost
        took = ev.get("time", 0) - inv.get("time", 0)
        if ev.get("type") == "info" or took > timeout:
            answer = "was given up on" if ev.get("type") == "info" else f"was answered after {took}"
            return CheckResult.violation(
                PROGRESS,
                f"{p}'s {inv['f']} of {inv.get('key')} (event {inv.get('index')}, at time "
                f"{inv.get('time')}), made after the faults stopped at time {quiet_since}, "
                f"{answer} ticks: with nothing lost the store must answer within the client's "
                f"timeout ({timeout} ticks).",
                event=ev.get("index"),
                process=p,
            )
    for client, (command, stream, unstarted) in sorted(work_left.items()):
        if command is None and unstarted <= 0:
            continue
        what = (
            f"its {command} of {stream} is still open"
            if command is not None
            else f"it has {unstarted} command(s) it never started"
        )
        return CheckResult.violation(
            PROGRESS,
            f"{now - quiet_since} ticks after the faults stopped (at time {quiet_since}) "
            f"{client} has not finished its work: {what}, although a command takes at most "
            f"{bound} ticks without faults.",
            client=client,
        )
    return None
