"""Checks of a replicated key-value store's claims, from its history alone.

* **Durability**: after the faults stopped (healing, restarts, anti-entropy), every acknowledged
  write, or a later one (a higher version), is readable: the replicas of the key hold a version
  at least as high as every acknowledged put or delete of that key.
* **Convergence**: after quiescence the replicas of every key agree (same version, same value),
  and every server runs the same ring epoch.
* **Version uniqueness**: two acknowledged writes never carry the same version (versions order
  the writes of a key; a tie would make "the later write" ambiguous).

The history must hold the client operations (``ok`` put/delete events carry ``key`` and
``version``) and one ``audit`` event per key: the final read of every replica, recorded after the
faults stopped (``{"type": "audit", "key": k, "replicas": {node: {"version": [...], "value":
v}}, "epochs": {node: epoch}}``). Linearizability of strict mode is judged separately by
``checkers.linearizability.check_history(events, "kv")``.

A history these checks cannot read (a version that is not a list of integers and strings, a
version whose parts cannot be ordered against another version's, an audit without its replicas)
is refused with a :class:`treadle.errors.MalformedEvent` naming the event: a buggy store may
record anything, and a checker judges it or says why it cannot, never crashes on it. Under
exploration that is a violation of "well-formed history"; ``treadle check`` exits 2 with the
file and line.
"""

from __future__ import annotations

from typing import Any

from treadle.checkers.result import CheckResult

from treadle.errors import MalformedEvent

DURABILITY = "Durability"
CONVERGENCE = "Convergence"
VERSION_UNIQUENESS = "Version uniqueness"


def _v(version: Any) -> tuple:
    return tuple(version) if version else ()


def _kind(part: Any) -> str:
    return "string" if isinstance(part, str) else "integer"


class _Versions:
    """Reads the versions of a history, refusing any that cannot be ordered: versions are
    compared part by part (lexicographically), so every part must be an integer or a string, and
    the parts at one position must be of one kind across the whole history (an integer counter
    cannot be ordered against a string)."""

    def __init__(self) -> None:
        self.kinds: list[tuple[str, int, int]] = []  # per position: kind, event, position

    def read(self, version: Any, event: dict[str, Any], pos: int, what: str) -> tuple:
        if version is None or version == [] or version == ():
            return ()
        if not isinstance(version, (list, tuple)):
            raise self._bad(event, pos, f"{what} {version!r} is not a list")
        for i, part in enumerate(version):
            if isinstance(part, bool) or not isinstance(part, (int, str)):
                raise self._bad(
                    event,
                    pos,
                    f"{what} {list(version)!r}: part {i} ({part!r}) is not an integer or a string",
                )
            kind = _kind(part)
            if i == len(self.kinds):
                self.kinds.append((kind, event.get("index", pos), pos))
            elif self.kinds[i][0] != kind:
                first, at, _ = self.kinds[i]
                raise self._bad(
                    event,
                    pos,
                    f"{what} {list(version)!r}: part {i} is a {kind}, but in the "
                    f"version of event {at} it is a {first}, so the two cannot be ordered",
                )
        return tuple(version)

    @staticmethod
    def _bad(event: dict[str, Any], pos: int, problem: str) -> MalformedEvent:
        return MalformedEvent(
            pos,
            f"event {event.get('index', pos)} ({event.get('type')}): {problem}; expected "
            "a version as a list of integers and strings, the same kind at each position",
        )


def _well_formed(events: list[dict[str, Any]]) -> None:
    """Refuse (MalformedEvent) a history whose versions or audits these checks cannot read."""
    versions = _Versions()
    for pos, e in enumerate(events):
        kind = e.get("type")
        if kind == "ok" and e.get("f") in ("put", "delete") and "key" in e:
            versions.read(e.get("version"), e, pos, "version")
        elif kind == "audit":
            if "key" not in e:
                raise MalformedEvent(pos, f"event {e.get('index', pos)} (audit): no key")
            replicas = e.get("replicas")
            if not isinstance(replicas, dict):
                raise MalformedEvent(
                    pos,
                    f"event {e.get('index', pos)} (audit): expected replicas as a mapping "
                    f"node -> {{version, value}}, got {replicas!r}",
                )
            for node, r in replicas.items():
                if not isinstance(r, dict):
                    raise MalformedEvent(
                        pos,
                        f"event {e.get('index', pos)} (audit): replica {node}: expected "
                        f"{{version, value}}, got {r!r}",
                    )
                versions.read(r.get("version"), e, pos, f"replica {node}'s version")
            epochs = e.get("epochs")
            if epochs is not None and not isinstance(epochs, dict):
                raise MalformedEvent(
                    pos,
                    f"event {e.get('index', pos)} (audit): expected epochs as a mapping "
                    f"node -> epoch, got {epochs!r}",
                )


def _fmt(version: Any) -> str:
    return "none" if not version else "(" + ", ".join(str(x) for x in version) + ")"


def acknowledged_writes(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Acknowledged put/delete operations per key (the ``ok`` events)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e.get("type") == "ok" and e.get("f") in ("put", "delete") and "key" in e:
            out.setdefault(e["key"], []).append(e)
    return out


def audits(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last audit event of each key."""
    out: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("type") == "audit":
            out[e["key"]] = e
    return out


def check_version_uniqueness(events: list[dict[str, Any]]) -> CheckResult:
    _well_formed(events)
    seen: dict[tuple[str, tuple], dict[str, Any]] = {}
    for key, writes in sorted(acknowledged_writes(events).items()):
        for w in writes:
            v = _v(w.get("version"))
            if not v:
                continue
            other = seen.get((key, v))
            if other is not None and other.get("value") != w.get("value"):
                return CheckResult.violation(
                    VERSION_UNIQUENESS,
                    f"two acknowledged writes of key {key!r} carry the same version {_fmt(v)}: "
                    f"{other['f']} {other.get('value')!r} by {other.get('process')} (event "
                    f"{other.get('index')}) and {w['f']} {w.get('value')!r} by "
                    f"{w.get('process')} (event {w.get('index')}); replicas cannot tell which "
                    f"one is later.",
                    key=key,
                    events=[other.get("index"), w.get("index")],
                )
            seen[(key, v)] = w
    return CheckResult.passed(VERSION_UNIQUENESS)


def check_durability(events: list[dict[str, Any]]) -> CheckResult:
    _well_formed(events)
    writes = acknowledged_writes(events)
    final = audits(events)
    if writes and not final:
        return CheckResult.unknown(
            DURABILITY,
            "the history has acknowledged writes but no audit events (the final read of every "
            "replica after the faults stopped), so durability cannot be judged.",
        )
    for key in sorted(writes):
        latest = max(writes[key], key=lambda e: _v(e.get("version")))
        want = _v(latest.get("version"))
        audit = final.get(key)
        if audit is None:
            return CheckResult.unknown(
                DURABILITY, f"key {key!r} was written but never audited.", key=key
            )
        replicas = audit["replicas"]
        held = {n: _v(r.get("version")) for n, r in sorted(replicas.items())}
        best = max(held.values(), default=())
        if best < want:
            holders = ", ".join(f"{n} {_fmt(v)}" for n, v in held.items())
            return CheckResult.violation(
                DURABILITY,
                f"acknowledged write lost: {latest.get('process')} was told that {latest['f']} "
                f"{key!r} = {latest.get('value')!r} succeeded with version {_fmt(want)} (event "
                f"{latest.get('index')}), but after healing and anti-entropy the replicas of "
                f"{key!r} at epoch {audit.get('epoch')} hold only older versions ({holders}), "
                f"so no read can return it or a later write.",
                key=key,
                write=latest.get("index"),
                audit=audit.get("index"),
            )
        for w in writes[key]:
            v = _v(w.get("version"))
            for n, r in sorted(replicas.items()):
                if _v(r.get("version")) == v and r.get("value") != w.get("value"):
                    return CheckResult.violation(
                        DURABILITY,
                        f"replica {n} holds version {_fmt(v)} of {key!r} with value "
                        f"{r.get('value')!r}, but that version was acknowledged for {w['f']} "
                        f"{w.get('value')!r} (event {w.get('index')}).",
                        key=key,
                        write=w.get("index"),
                    )
    return CheckResult.passed(DURABILITY, f"{len(writes)} written keys audited")


def check_convergence(events: list[dict[str, Any]]) -> CheckResult:
    _well_formed(events)
    final = audits(events)
    for key, audit in sorted(final.items()):
        epochs = audit.get("epochs") or {}
        if len(set(epochs.values())) > 1:
            desc = ", ".join(f"{n} epoch {e}" for n, e in sorted(epochs.items()))
            return CheckResult.violation(
                CONVERGENCE,
                f"after quiescence the servers disagree on the ring configuration: {desc}.",
                epochs=epochs,
            )
        states = {
            n: (_v(r.get("version")), r.get("value")) for n, r in sorted(audit["replicas"].items())
        }
        if len(set(states.values())) > 1:
            desc = "; ".join(f"{n} has {_fmt(v)} = {val!r}" for n, (v, val) in states.items())
            return CheckResult.violation(
                CONVERGENCE,
                f"after quiescence the replicas of {key!r} (epoch {audit.get('epoch')}) still "
                f"disagree: {desc}.",
                key=key,
                audit=audit.get("index"),
            )
    return CheckResult.passed(CONVERGENCE, f"{len(final)} keys audited")


def check_history(events: list[dict[str, Any]], timeout: float | None = None) -> CheckResult:
    """Version uniqueness, durability and convergence of a kv history (``timeout`` is accepted
    for the CLI's sake: these checks are linear)."""
    events = list(events)
    unknown: CheckResult | None = None
    for check in (check_version_uniqueness, check_durability, check_convergence):
        r = check(events)
        if r.verdict == "violation":
            return r
        if r.verdict == "unknown" and unknown is None:
            unknown = r
    if unknown is not None:
        return unknown
    return CheckResult.passed(
        "Durability and Convergence",
        "every acknowledged write (or a later one) is held by the replicas, which agree",
    )
