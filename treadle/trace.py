"""Traces: (system, config, bug, seed, choices). Small JSON, written atomically."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from treadle.errors import InputError
from treadle.history import atomic_write, digest

FORMAT = "treadle-trace/1"


@dataclass
class Trace:
    system: str
    system_version: str
    bug: str | None
    config: dict[str, Any]
    seed: int
    strategy: str
    steps: int
    choices: list[int]
    violation: dict[str, Any] | None = None
    history_sha256: str = ""
    events: int = 0
    shrunk_from: dict[str, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_run(
        cls,
        system: str,
        system_version: str,
        bug: str | None,
        config: dict[str, Any],
        seed: int,
        strategy: str,
        run: Any,
        choices: list[int],
        **fields: Any,
    ) -> Trace:
        """The trace of a run made in this process (a :class:`treadle.run.RunResult`): its steps,
        violation, history digest and event count come from ``run``; ``fields`` sets the rest
        (or overrides those)."""
        v = run.violation
        values: dict[str, Any] = {
            "steps": run.steps,
            "violation": v.to_json() if v is not None else None,
            "history_sha256": digest(run.history),
            "events": len(run.history),
            **fields,
        }
        return cls(system, system_version, bug, config, seed, strategy, choices=choices, **values)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    def dumps(self) -> str:
        d = self.to_json()
        choices = d.pop("choices")
        text = json.dumps(d, indent=1, sort_keys=False)
        # the choice list on one line keeps the file small and diffable
        return text[:-2] + ',\n "choices": ' + json.dumps(choices, separators=(",", ":")) + "\n}\n"

    def save(self, path: str) -> None:
        atomic_write(path, self.dumps())


_REQUIRED = {
    "system": str,
    "config": dict,
    "seed": int,
    "steps": int,
    "choices": list,
}


def load_trace(path: str) -> Trace:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputError(path, None, "no such trace file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, None, f"cannot read: {e}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        truncated = " (the file looks truncated)" if e.pos >= len(text.rstrip()) else ""
        raise InputError(
            path, e.lineno, f"expected a treadle trace (JSON): {e.msg}{truncated}"
        ) from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        got = d.get("format") if isinstance(d, dict) else type(d).__name__
        raise InputError(
            path, 1, f'expected a treadle trace with "format": "{FORMAT}", got {got!r}'
        )
    for key, typ in _REQUIRED.items():
        if not isinstance(d.get(key), typ):
            raise InputError(path, None, f'trace field "{key}" missing or not a {typ.__name__}')
    if not all(isinstance(c, int) and c >= 0 for c in d["choices"]):
        raise InputError(
            path, None, 'trace field "choices" must be a list of non-negative integers'
        )
    return Trace(
        system=d["system"],
        system_version=str(d.get("system_version", "")),
        bug=d.get("bug"),
        config=d["config"],
        seed=d["seed"],
        strategy=str(d.get("strategy", "")),
        steps=d["steps"],
        choices=d["choices"],
        violation=d.get("violation"),
        history_sha256=str(d.get("history_sha256", "")),
        events=int(d.get("events", 0)),
        shrunk_from=d.get("shrunk_from"),
        extra=d.get("extra") or {},
    )
