"""Event-store invariants, checked on a history recorded anywhere.

``check_history(events)`` (what ``treadle check FILE --model eventstore`` calls) reconstructs the
store's log from its protocol events and the clients' operations, one event at a time, and
stops at the first broken property:

* **Stream Version Contiguity**: each stream's versions are 1, 2, 3, ... with no gap and no
  duplicate.
* **Optimistic Concurrency**: an append accepted with expected version v (``"no-stream"`` = 0)
  was written when the stream was at v; a refusal reports the stream's real version, which
  differs from the expected one. Of several appends with the same expected version, one wins.
* **Global Order**: global positions strictly increase, so they agree with every stream's order.
* **Idempotent Append**: an event id is stored once; a deduplicated retry points at the events
  the first attempt stored.
* **Durability**: an acknowledged append is in the log when acknowledged, and no recovery after
  a crash drops it.
* **Append Outcome**: a client is told the truth about its append. An append answered ok names
  one version per event, ``first..last``, and one position per event; an append answered as
  failed (a refusal, an ``event-id-reused`` error, anything but ``info``) stored none of its
  events, neither before the answer nor later. A retry is answered as the first attempt was: a
  retry of an append whose events are stored is answered ok at their versions.
* **Snapshot Consistency** and **Replay Equivalence**: a saved snapshot, and every aggregate a
  client loads from a snapshot or a cache plus the tail, equal the full replay of the stream up
  to that version.
* **Projection Consistency**: each projected view equals the fold of its stream up to that
  global position.
* **Balance Never Negative** and **Aggregate Invariants**: the domain rules hold in every state
  the log implies (see :mod:`checkers.eventstore.domain`).
* **Command Decisions**: every command appends what the specification decides from the state
  its client loaded, or is refused where the specification refuses
  (:mod:`checkers.eventstore.commands`).

The events it reads (the schema, documented in docs/eventstore.md): ``appended`` {stream,
version, position, event_id, event_type, data, expected, batch}; ``rejected`` {stream, expected,
actual}; ``deduplicated`` {stream, event_ids, first_version}; ``recovered`` {position};
``snapshot_saved`` {stream, version, state}; ``loaded`` {stream, version, state}; ``projected``
{position, stream, view}; and client operations ``append`` (invoke and fail value [expected,
[event ids]], ok value [first version, last version], ok field ``positions``, field ``key`` =
stream).
One store per history.
"""

from __future__ import annotations

from math import inf
from typing import Any

from treadle.checkers.eventstore.commands import PROPERTY as COMMAND_DECISIONS
from treadle.checkers.eventstore.commands import Commands
from treadle.checkers.eventstore.domain import KNOWN_TYPES, apply, norm
from treadle.checkers.result import CheckResult

from treadle.errors import MalformedEvent

__all__ = ["Monitor", "check_history", "check_final"]


def expected_matches(expected: Any, current: int) -> bool:
    if expected == "any" or expected is None:
        return True
    if expected == "no-stream":
        return current == 0
    return expected == current


def _expected_text(expected: Any) -> str:
    return "no-stream (0)" if expected == "no-stream" else repr(expected)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return (_integer(value) or isinstance(value, float)) and value == value and abs(value) != inf


def _append_ids(ev: dict[str, Any] | None) -> list[Any]:
    """The event ids of an append operation's value ``[expected, [event ids]]``, if it has one."""
    value = (ev or {}).get("value")
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], list):
        return [i for i in value[1] if isinstance(i, (str, int))]
    return []


class Stream:
    """One stream of the reconstructed log, with the spec's state after each version."""

    __slots__ = ("entries", "states", "known")

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.states: list[Any] = [None]  # states[v]: the state after version v
        self.known = True


class Monitor:
    """Incremental checker: feed events in history order; ``violation`` is the first failure."""

    def __init__(self) -> None:
        self.log: dict[int, dict[str, Any]] = {}  # position -> appended event
        self.last_position = 0
        self.streams: dict[str, Stream] = {}
        self.ids: dict[str, int] = {}  # event id -> position
        self.acked: dict[int, dict[str, Any]] = {}  # position -> the ok event acknowledging it
        self.open: dict[Any, dict[str, Any]] = {}  # process -> its open append invoke
        self.failed: dict[str, dict[str, Any]] = {}  # event id -> the fail answering its append
        self.commands = Commands()
        self.violation: CheckResult | None = None
        self.seen = 0

    # ------------------------------------------------------------------ helpers
    def stream(self, name: str) -> Stream:
        s = self.streams.get(name)
        if s is None:
            s = self.streams[name] = Stream()
        return s

    def fail(self, prop: str, message: str, ev: dict[str, Any], **details: Any) -> CheckResult:
        self.violation = CheckResult.violation(
            prop, message, event=ev.get("index", self.seen), **details
        )
        return self.violation

    # ------------------------------------------------------------------ feeding
    def feed_all(self, events: list[dict[str, Any]]) -> CheckResult | None:
        """Feed the events not fed yet (``events`` is the whole history so far)."""
        while self.violation is None and self.seen < len(events):
            ev = events[self.seen]
            self.seen += 1
            self.feed(ev)
        return self.violation

    def feed(self, ev: dict[str, Any]) -> CheckResult | None:
        bad = self.feed_store(ev)
        if bad is None:
            found = self.commands.feed(ev)
            if found is not None:
                message, details = found
                return self.fail(COMMAND_DECISIONS, message, ev, **details)
        return bad

    def feed_store(self, ev: dict[str, Any]) -> CheckResult | None:
        t = ev.get("type")
        if t == "appended":
            return self.on_appended(ev)
        if t == "rejected":
            return self.on_rejected(ev)
        if t == "deduplicated":
            return self.on_deduplicated(ev)
        if t == "recovered":
            return self.on_recovered(ev)
        if t == "snapshot_saved":
            return self.on_state(ev, "Snapshot Consistency", "snapshot of")
        if t == "loaded":
            return self.on_state(ev, "Replay Equivalence", "aggregate loaded for")
        if t == "projected":
            return self.on_projected(ev)
        if ev.get("f") == "append" and "process" in ev:
            p = repr(ev["process"])
            if t == "invoke":
                self.open[p] = ev
            elif t == "ok":
                return self.on_ack(ev, self.open.pop(p, None))
            elif t == "fail":
                return self.on_failed(ev, self.open.pop(p, None))
            else:
                self.open.pop(p, None)
        return None

    def malformed(self, ev: dict[str, Any], problem: str) -> MalformedEvent:
        """An event these checks cannot read: refused, naming it (``treadle check``: exit 2 at
        its line; an exploration: a "well-formed history" violation, since the nodes wrote it)."""
        return MalformedEvent(
            self.seen - 1, f"event {ev.get('index', self.seen - 1)} ({ev.get('type')}): {problem}"
        )

    def on_appended(self, ev: dict[str, Any]) -> CheckResult | None:
        name, version, position = ev.get("stream"), ev.get("version"), ev.get("position")
        if not isinstance(name, str) or not _integer(version) or not _integer(position):
            raise self.malformed(ev, "needs a stream name and an integer version and position")
        data = ev.get("data") or {}
        if not isinstance(data, dict):
            raise self.malformed(ev, f"data must be an object, not {data!r}")
        if ev.get("event_type") in ("Deposited", "Withdrawn") and not _number(data.get("amount")):
            raise self.malformed(
                ev, f"{ev.get('event_type')} needs a numeric amount, not {data.get('amount')!r}"
            )
        event_id = ev.get("event_id")
        s = self.stream(name)
        current = len(s.entries)
        what = f"event {event_id!r} ({ev.get('event_type')}) appended to {name} at version {version}, position {position}"
        if ev.get("batch", 0) == 0 and not expected_matches(ev.get("expected"), current):
            return self.fail(
                "Optimistic Concurrency",
                f"The store accepted an append to {name} with expected version "
                f"{_expected_text(ev.get('expected'))} while the stream was at version {current}: "
                f"{what}. A concurrent append had moved the stream on between the version check "
                "and the write (a lost update).",
                ev,
                stream=name,
                expected=ev.get("expected"),
                actual=current,
            )
        if version != current + 1:
            kind = "a duplicate of" if version <= current else "a gap after"
            return self.fail(
                "Stream Version Contiguity",
                f"{what}, but {name} was at version {current}: version {version} is {kind} "
                f"the stream's versions (expected {current + 1}).",
                ev,
                stream=name,
                version=version,
                current=current,
            )
        if position <= self.last_position:
            return self.fail(
                "Global Order",
                f"{what}, but position {self.last_position} was already taken: global "
                "positions must strictly increase.",
                ev,
                position=position,
                last_position=self.last_position,
            )
        if event_id is not None and event_id in self.failed:
            told = self.failed[event_id]
            return self.fail(
                "Append Outcome",
                f"{what}, but {told.get('process')} had been told its append of {event_id!r} "
                f"failed ({told.get('error') or 'fail'}, event {told.get('index')}): an append "
                "answered as failed must never take effect.",
                ev,
                event_id=event_id,
                stream=name,
            )
        if event_id is not None and event_id in self.ids:
            first = self.log[self.ids[event_id]]
            return self.fail(
                "Idempotent Append",
                f"{what}, but event id {event_id!r} is already stored at {first['stream']} "
                f"version {first['version']}, position {first['position']}: a retried append "
                "was stored twice.",
                ev,
                event_id=event_id,
            )
        self.log[position] = ev
        self.last_position = position
        if event_id is not None:
            self.ids[event_id] = position
        s.entries.append(ev)
        type_ = ev.get("event_type")
        if s.known and type_ in KNOWN_TYPES:
            state, broken = apply(s.states[-1], type_, ev.get("data") or {})
            s.states.append(state)
            if broken:
                prop = "Balance Never Negative" if "balance" in broken else "Aggregate Invariants"
                return self.fail(
                    prop,
                    f"{what}: {broken}. The stream implies this state after version {version}; "
                    f"the decide step should have refused the command, or the store let a "
                    "concurrent append slip past the expected-version check.",
                    ev,
                    stream=name,
                    version=version,
                    state=state,
                )
        else:
            s.known = False
            s.states.append(None)
        return None

    def on_rejected(self, ev: dict[str, Any]) -> CheckResult | None:
        name, expected, actual = ev["stream"], ev.get("expected"), ev.get("actual")
        current = len(self.stream(name).entries)
        if actual != current or expected_matches(expected, current):
            return self.fail(
                "Optimistic Concurrency",
                f"The store refused an append to {name} with expected version "
                f"{_expected_text(expected)}, reporting version {actual}, while the stream was at "
                f"version {current}.",
                ev,
                stream=name,
                expected=expected,
                actual=actual,
                current=current,
            )
        return None

    def on_deduplicated(self, ev: dict[str, Any]) -> CheckResult | None:
        name, ids, first = ev["stream"], ev.get("event_ids", []), ev.get("first_version")
        entries = self.stream(name).entries
        stored = [e.get("event_id") for e in entries[first - 1 : first - 1 + len(ids)]]
        if first is None or first < 1 or stored != list(ids):
            return self.fail(
                "Idempotent Append",
                f"The store answered a retried append of {ids} to {name} as already stored "
                f"from version {first}, but {name} holds {stored} there.",
                ev,
                stream=name,
                event_ids=ids,
            )
        return None

    def on_recovered(self, ev: dict[str, Any]) -> CheckResult | None:
        kept = ev["position"]
        if kept > self.last_position:
            return self.fail(
                "Durability",
                f"The store recovered {kept} events after a restart, but only "
                f"{self.last_position} were ever appended.",
                ev,
            )
        lost = [p for p in sorted(self.log) if p > kept]
        for p in lost:
            if p in self.acked:
                e, ack = self.log[p], self.acked[p]
                return self.fail(
                    "Durability",
                    f"After a crash the store recovered positions 1..{kept} only, losing event "
                    f"{e.get('event_id')!r} at {e['stream']} version {e['version']}, position {p}, "
                    f"which {ack.get('process')} had been told was appended (event "
                    f"{ack.get('index')}): it was acknowledged before it was durable.",
                    ev,
                    position=p,
                    stream=e["stream"],
                    version=e["version"],
                )
        for p in reversed(lost):
            e = self.log.pop(p)
            self.ids.pop(e.get("event_id"), None)
            s = self.streams[e["stream"]]
            s.entries.pop()
            s.states.pop()
        self.last_position = kept
        return None

    def on_ack(self, ev: dict[str, Any], invoke: dict[str, Any] | None) -> CheckResult | None:
        value = ev.get("value") or [None, None]
        if (
            not isinstance(value, list | tuple)
            or not 1 <= len(value) <= 2
            or not all(v is None or _integer(v) for v in value)
        ):
            raise self.malformed(
                ev, f"an append's ok value is [first, last] version, not {value!r}"
            )
        positions = ev.get("positions")
        if positions is not None and (
            not isinstance(positions, list | tuple) or not all(_integer(p) for p in positions)
        ):
            raise self.malformed(ev, f"positions must be a list of integers, not {positions!r}")
        first = value[0]
        name = ev.get("key") if ev.get("key") is not None else (invoke or {}).get("key")
        ids = _append_ids(invoke)
        if name is None or first is None:
            return None
        entries = self.stream(name).entries
        positions = ev.get("positions") or []
        last = value[1] if len(value) > 1 else None
        if ids and last is not None and last != first + len(ids) - 1:
            return self.fail(
                "Append Outcome",
                f"{ev.get('process')} was told its append of {len(ids)} event(s) {ids} to {name} "
                f"was stored at versions {first}..{last}: one version per event, "
                f"{first}..{first + len(ids) - 1}, was expected.",
                ev,
                stream=name,
                first_version=first,
                last_version=last,
            )
        if ids and ev.get("positions") is not None and len(positions) != len(ids):
            return self.fail(
                "Append Outcome",
                f"{ev.get('process')} was told its append of {len(ids)} event(s) {ids} to {name} "
                f"was stored at positions {positions}: one position per event was expected.",
                ev,
                stream=name,
                positions=positions,
            )
        for i, event_id in enumerate(ids):
            version = first + i
            e = entries[version - 1] if 0 < version <= len(entries) else None
            if e is None or e.get("event_id") != event_id:
                have = "nothing" if e is None else f"event {e.get('event_id')!r}"
                return self.fail(
                    "Durability",
                    f"{ev.get('process')} was told its append of {event_id!r} to {name} was "
                    f"stored at version {version}, but the log holds {have} there: an "
                    "acknowledged append is missing.",
                    ev,
                    stream=name,
                    version=version,
                    event_id=event_id,
                )
            if i < len(positions) and positions[i] != e["position"]:
                return self.fail(
                    "Durability",
                    f"{ev.get('process')} was told {event_id!r} has position {positions[i]}, but "
                    f"the log stores it at position {e['position']}.",
                    ev,
                    event_id=event_id,
                )
            self.acked[e["position"]] = ev
        return None

    def on_failed(self, ev: dict[str, Any], invoke: dict[str, Any] | None) -> CheckResult | None:
        """An append answered as failed: none of its events is stored, and none may be later."""
        ids = _append_ids(ev) or _append_ids(invoke)
        for event_id in ids:
            position = self.ids.get(event_id)
            if position is not None:
                e = self.log[position]
                return self.fail(
                    "Append Outcome",
                    f"{ev.get('process')} was told its append of {ids} to "
                    f"{ev.get('key', e['stream'])} failed ({ev.get('error') or 'fail'}), but "
                    f"{event_id!r} is stored at {e['stream']} version {e['version']}, position "
                    f"{position}: an append answered as failed must not have taken effect (a "
                    "retry of a stored append is answered as the first attempt was).",
                    ev,
                    event_id=event_id,
                    stream=e["stream"],
                    version=e["version"],
                )
        for event_id in ids:
            self.failed[event_id] = ev
        return None

    def spec_state(self, name: str, version: int) -> tuple[bool, Any]:
        s = self.streams.get(name)
        if s is None:
            return (version == 0), None
        if not s.known or version > len(s.entries) or version < 0:
            return False, None
        return True, s.states[version]

    def on_state(self, ev: dict[str, Any], prop: str, what: str) -> CheckResult | None:
        name, version = ev["stream"], ev["version"]
        s = self.streams.get(name)
        if s is not None and not s.known:
            return None
        if version > (len(s.entries) if s else 0):
            return self.fail(
                prop,
                f"The {what} {name} is at version {version}, but the stream has only "
                f"{len(s.entries) if s else 0} events.",
                ev,
                stream=name,
                version=version,
            )
        _, expected = self.spec_state(name, version)
        if norm(expected) != norm(ev.get("state")):
            return self.fail(
                prop,
                f"The {what} {name} at version {version} holds {norm(ev.get('state'))!r}, but "
                f"replaying the stream's events 1..{version} from the start gives "
                f"{norm(expected)!r}.",
                ev,
                stream=name,
                version=version,
                state=norm(ev.get("state")),
                replayed=norm(expected),
            )
        return None

    def on_projected(self, ev: dict[str, Any]) -> CheckResult | None:
        position, name = ev["position"], ev["stream"]
        e = self.log.get(position)
        if e is None or e["stream"] != name:
            return self.fail(
                "Projection Consistency",
                f"A projection applied position {position} as an event of {name}, but the log "
                f"holds {'nothing' if e is None else e['stream']} there.",
                ev,
                position=position,
            )
        known, expected = self.spec_state(name, e["version"])
        if known and norm(expected) != norm(ev.get("view")):
            return self.fail(
                "Projection Consistency",
                f"After position {position} ({name} version {e['version']}) the projection shows "
                f"{norm(ev.get('view'))!r} for {name}, but folding the stream up to there gives "
                f"{norm(expected)!r}.",
                ev,
                position=position,
                stream=name,
            )
        return None

    def views(self) -> dict[str, Any]:
        """The spec's view of every known stream at the end of the log."""
        return {n: norm(s.states[-1]) for n, s in sorted(self.streams.items()) if s.known}


def check_final(
    monitor: Monitor,
    store_log: list[tuple[int, str, int, str]] | None = None,
    projection: tuple[int, dict[str, Any]] | None = None,
) -> CheckResult | None:
    """Checks after quiescence: the store's own log (position, stream, version, event id) agrees
    with the log the history implies, and a caught-up projection (checkpoint, views) equals the
    fold of every stream."""
    if monitor.violation is not None:
        return monitor.violation
    implied = [
        (p, e["stream"], e["version"], e.get("event_id")) for p, e in sorted(monitor.log.items())
    ]
    if store_log is not None and list(store_log) != implied:
        diff = next(
            (i for i, (a, b) in enumerate(zip(store_log, implied, strict=False)) if a != b),
            min(len(store_log), len(implied)),
        )
        return CheckResult.violation(
            "Durability",
            f"After the faults stopped the store's log differs from the log its history implies "
            f"from position {diff + 1}: the store holds "
            f"{list(store_log[diff : diff + 1]) or 'nothing'}, the history "
            f"{implied[diff : diff + 1] or 'nothing'}.",
            position=diff + 1,
        )
    if projection is not None:
        checkpoint, views = projection
        if checkpoint != monitor.last_position:
            return CheckResult.violation(
                "Projection Convergence",
                f"After the faults stopped and the system settled, the projection has applied "
                f"positions up to {checkpoint}, but the log ends at {monitor.last_position}.",
                checkpoint=checkpoint,
                last_position=monitor.last_position,
            )
        expected = monitor.views()
        got = {k: norm(v) for k, v in sorted(views.items())}
        shown = {k: v for k, v in expected.items() if v is not None}
        if got != shown:
            bad = sorted(k for k in set(got) | set(shown) if got.get(k) != shown.get(k))
            return CheckResult.violation(
                "Projection Convergence",
                f"After quiescence the projection shows {[(k, got.get(k)) for k in bad]}, but "
                f"a fold over the log gives {[(k, shown.get(k)) for k in bad]}.",
                streams=bad,
            )
    return None


def check_history(events: list[dict[str, Any]], timeout: float | None = None) -> CheckResult:
    """Check every event-store invariant on a history (the list of event dicts). The checks are
    a single linear pass, so ``timeout`` is accepted for the common interface and not needed."""
    monitor = Monitor()
    monitor.feed_all(events)
    if monitor.violation is not None:
        return monitor.violation
    return CheckResult.passed(
        "event store invariants",
        f"{len(monitor.log)} events in {len(monitor.streams)} streams; versions contiguous, "
        "concurrency checks, positions, durability, snapshots, loads and projections agree with "
        "the log.",
        events=len(monitor.log),
        streams=len(monitor.streams),
    )
