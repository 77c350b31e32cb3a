"""Two-phase commit: one transaction manager (TM) and R resource managers (RMs).

Modelled on Lamport's TLA+ ``TwoPhase`` specification, which Stateright's 2PC example also
follows, so that state counts are comparable:

* an RM is ``working``, ``prepared``, ``committed`` or ``aborted``; while working it may
  spontaneously prepare (telling the TM) or choose to abort;
* the TM is ``init``, ``committed`` or ``aborted``; it records which RMs told it they prepared,
  may commit once all have, and may abort at any time while ``init``;
* messages: ``Prepared`` (RM -> TM), ``Commit`` and ``Abort`` (TM -> every RM).

TLA+ actions that may happen "at any time" are timers here: in the asynchronous world used for
exhaustive runs a pending timer may fire at any moment, exactly like an enabled action. An RM in
``working`` has two timers, ``prepare`` and ``abort``: whichever fires first decides, and cancels
the other. The TM has an ``abort`` timer while ``init``, and a ``commit`` timer once every RM has
prepared. So all nondeterminism is the order of events, which DPOR can reduce.

Seeded bug ``commit-without-all-prepared``: the TM arms its commit timer as soon as *one* RM
has prepared, so it may commit while another RM has chosen to abort (breaks Consistency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from treadle.node import Context, Node

TM = "tm"


@dataclass(frozen=True)
class Prepared:
    """RM -> TM: I am prepared to commit (the sender is the RM)."""


@dataclass(frozen=True)
class Commit:
    """TM -> RM: the transaction commits."""


@dataclass(frozen=True)
class Abort:
    """TM -> RM: the transaction aborts."""


class ResourceManager(Node):
    def __init__(self) -> None:
        self.phase = "working"
        #: whether this RM voted "prepared" (TLA+ keeps the Prepared message in ``msgs``
        #: forever; a real RM logs its vote): it distinguishes "aborted after preparing" from
        #: "chose to abort"
        self.voted = False

    def state(self) -> Any:
        # no id in the state: resource managers are interchangeable (symmetry reduction)
        return (self.phase, self.voted)

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("prepare", 1)
        ctx.set_timer("abort", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        if self.phase != "working":
            return
        ctx.cancel_timer("abort" if name == "prepare" else "prepare")
        if name == "prepare":  # TLA+ RMPrepare
            self.phase = "prepared"
            self.voted = True
            ctx.record("rm-prepared")
            ctx.send(TM, Prepared())
        else:  # TLA+ RMChooseToAbort
            self.phase = "aborted"
            ctx.record("rm-aborted", reason="chose to abort")

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, Commit):  # TLA+ RMRcvCommitMsg
            if self.phase != "committed":
                self.phase = "committed"
                ctx.record("rm-committed")
        elif isinstance(msg, Abort):  # TLA+ RMRcvAbortMsg
            if self.phase != "aborted":
                ctx.sometimes("twophase: a prepared RM is aborted by the TM", self.voted)
                ctx.cancel_timer("prepare")
                ctx.cancel_timer("abort")
                self.phase = "aborted"
                ctx.record("rm-aborted", reason="abort from the TM")


class TransactionManager(Node):
    def __init__(self) -> None:
        self.phase = "init"
        self.prepared: set[str] = set()

    def state(self) -> Any:
        return (self.phase, frozenset(self.prepared))

    def rms(self, ctx: Context) -> list[str]:
        return [s for s in ctx.servers if s != TM]

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("abort", 1)  # TLA+ TMAbort is enabled while init

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, Prepared) and self.phase == "init":  # TLA+ TMRcvPrepared
            self.prepared.add(src)
            ready = len(self.prepared) == len(self.rms(ctx))
            if ctx.bug == "commit-without-all-prepared":
                ready = True
            if ready and not ctx.timer_pending("commit"):
                ctx.set_timer("commit", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        if self.phase != "init":
            return
        if name == "commit":  # TLA+ TMCommit
            self.phase = "committed"
            ctx.sometimes("twophase: the TM commits")
            ctx.cancel_timer("abort")
            ctx.record("tm-committed", prepared=sorted(self.prepared))
            for rm in self.rms(ctx):
                ctx.send(rm, Commit())
        elif name == "abort":  # TLA+ TMAbort
            self.phase = "aborted"
            ctx.cancel_timer("commit")
            ctx.record("tm-aborted")
            for rm in self.rms(ctx):
                ctx.send(rm, Abort())
