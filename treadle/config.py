"""Declared configuration: every key has a type, a range and a default, in one schema per layer
(world, strategy, exhaustive search, system), and a bad value is refused before the first run.

A :class:`Key` says what one key is; a :class:`Rule` ties keys together (``latency_min <=
latency_max``). A system declares its own keys the same way (``System.config_keys`` and
``System.config_rules``); ``treadle list SYSTEM --config`` prints them. The error for a bad value
names the key, the value and what is expected, in one line::

    config drop_rate=1.5: expected a number in [0, 1] (probability a delivered message is lost)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from treadle.errors import TreadleError

KINDS = ("int", "float", "bool", "str", "json")


class ConfigError(TreadleError, ValueError):
    """A config value outside its declared type or range (CLI: exit 2, one line)."""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


@dataclass(frozen=True)
class Key:
    name: str
    kind: str  # int | float | bool | str | json
    default: Any
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    #: the allowed values (str keys, or a closed set of ints)
    choices: tuple[Any, ...] | None = None
    #: values allowed outside the range, with what they mean: ((-1, "unbounded"),)
    special: tuple[tuple[Any, str], ...] = ()
    #: extra check for str/json values: returns what was expected, or None if fine
    check: Callable[[Any], str | None] | None = None
    #: the value a saved trace that predates this key replays with (the behaviour before the
    #: key existed), when the key's default is new behaviour; None: the default
    legacy: Any = None
    #: values an exploration draws this key from, per run, unless the user set it (an option
    #: the docs describe that the default mix must not leave untested: :mod:`treadle.options`)
    swarm: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"config key {self.name}: kind {self.kind!r} is not one of {KINDS}")
        for v in self.swarm or ():
            self.validate(v)  # a swarm value outside the key's range is the binding's bug

    # ------------------------------------------------------------------ words
    def type_text(self) -> str:
        return {
            "int": "integer",
            "float": "number",
            "bool": "boolean",
            "str": "string",
            "json": "JSON",
        }[self.kind]

    def range_text(self) -> str:
        """The range alone, for tables: ``[0, 1]``, ``>= 1``, ``fifo | unordered``."""
        if self.choices is not None:
            out = " | ".join(str(c) for c in self.choices)
        elif self.kind == "bool":
            out = "true | false"
        elif self.kind in ("str", "json"):
            out = "any" if self.check is None else "checked"
        elif self.minimum is not None and self.maximum is not None:
            out = f"[{_num(self.minimum)}, {_num(self.maximum)}]"
        elif self.minimum is not None:
            out = f">= {_num(self.minimum)}"
        elif self.maximum is not None:
            out = f"<= {_num(self.maximum)}"
        else:
            out = "any"
        for v, meaning in self.special:
            out += f" (or {v!r}: {meaning})"
        return out

    def expected(self) -> str:
        if self.choices is not None:
            what = "one of " + ", ".join(str(c) for c in self.choices)
        elif self.kind in ("int", "float"):
            noun = "an integer" if self.kind == "int" else "a number"
            if self.minimum is not None and self.maximum is not None:
                what = f"{noun} in [{_num(self.minimum)}, {_num(self.maximum)}]"
            elif self.minimum is not None:
                what = f"{noun} >= {_num(self.minimum)}"
            elif self.maximum is not None:
                what = f"{noun} <= {_num(self.maximum)}"
            else:
                what = noun if self.kind == "int" else "a finite number"
        elif self.kind == "bool":
            what = "true or false"
        elif self.kind == "json":
            what = "a JSON value"
        else:
            what = "a string"
        for v, meaning in self.special:
            what += f", or {v!r} for {meaning}"
        return what

    # ------------------------------------------------------------------ values
    def coerce(self, value: Any) -> Any:
        """A command-line string (or a Python value) as this key's type; ConfigError if not."""
        if isinstance(value, str) and self.kind != "str":
            return self.validate(self._parse(value), shown=value)  # the value as written
        return self.validate(value)

    def _parse(self, text: str) -> Any:
        t = text.strip()
        if self.kind == "bool":
            if t.lower() in ("1", "true", "yes", "on"):
                return True
            if t.lower() in ("0", "false", "no", "off"):
                return False
            raise self.error(text)
        if self.kind == "int":
            try:
                return int(t)
            except ValueError:
                raise self.error(text) from None
        if self.kind == "float":
            try:
                return float(t)
            except ValueError:
                raise self.error(text) from None
        try:
            return json.loads(t)
        except ValueError:
            raise self.error(text, "not JSON") from None

    def validate(self, value: Any, shown: str | None = None) -> Any:
        """Check a value of the right Python type against the range; return it (ints given for
        a number key become floats)."""
        if any(value == v and type(value) is type(v) for v, _ in self.special):
            return value
        k = self.kind
        if k == "bool":
            if not isinstance(value, bool):
                raise self.error(value, shown=shown)
        elif k == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(value, shown=shown)
        elif k == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.error(value, shown=shown)
            value = float(value)
            if not math.isfinite(value):
                raise self.error(value, shown=shown)
        elif k == "str":
            if not isinstance(value, str):
                raise self.error(value, shown=shown)
        if self.choices is not None and value not in self.choices:
            raise self.error(value, shown=shown)
        if k in ("int", "float"):
            if self.minimum is not None and value < self.minimum:
                raise self.error(value, shown=shown)
            if self.maximum is not None and value > self.maximum:
                raise self.error(value, shown=shown)
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise self.error(value, problem, shown)
        return value

    def error(self, value: Any, why: str | None = None, shown: str | None = None) -> ConfigError:
        if shown is None:
            shown = value if isinstance(value, str) else json.dumps(value, default=repr)
        doc = f" ({self.doc})" if self.doc and "(" not in self.doc else ""
        expected = why if why else self.expected()
        return ConfigError(f"config {self.name}={shown}: expected {expected}{doc}")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "default": self.default,
            "range": self.range_text(),
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices) if self.choices is not None else None,
            "special": {str(v): m for v, m in self.special},
            "doc": self.doc,
            "swarm": list(self.swarm) if self.swarm else None,
        }


@dataclass(frozen=True)
class Rule:
    """A constraint across keys, checked after every key is valid on its own."""

    keys: tuple[str, ...]
    holds: Callable[[dict[str, Any]], bool]
    text: str  # what must hold, e.g. "latency_min <= latency_max"

    def check(self, config: dict[str, Any]) -> None:
        if all(k in config for k in self.keys) and not self.holds(config):
            values = ", ".join(f"{k}={json.dumps(config[k], default=repr)}" for k in self.keys)
            raise ConfigError(f"config {values}: expected {self.text}")


# ---------------------------------------------------------------------------------------- helpers
def integer(
    name: str,
    default: int,
    doc: str = "",
    minimum: int | None = 0,
    maximum: int | None = None,
    special: dict[int, str] | None = None,
    legacy: int | None = None,
    swarm: tuple[int, ...] | None = None,
) -> Key:
    """An integer key, non-negative unless told otherwise."""
    return Key(
        name,
        "int",
        default,
        doc,
        minimum,
        maximum,
        special=tuple((special or {}).items()),
        legacy=legacy,
        swarm=swarm,
    )


def number(
    name: str,
    default: float,
    doc: str = "",
    minimum: float | None = 0.0,
    maximum: float | None = None,
) -> Key:
    return Key(name, "float", default, doc, minimum, maximum)


def rate(name: str, default: float, doc: str = "") -> Key:
    """A probability: a number in [0, 1]."""
    return Key(name, "float", default, doc, 0.0, 1.0)


def flag(name: str, default: bool, doc: str = "", swarm: tuple[bool, ...] | None = None) -> Key:
    return Key(name, "bool", default, doc, swarm=swarm)


def choice(
    name: str,
    default: str,
    options: Iterable[str],
    doc: str = "",
    swarm: tuple[str, ...] | None = None,
    legacy: str | None = None,
) -> Key:
    return Key(name, "str", default, doc, choices=tuple(options), swarm=swarm, legacy=legacy)


def text(
    name: str, default: str, doc: str = "", check: Callable[[Any], str | None] | None = None
) -> Key:
    return Key(name, "str", default, doc, check=check)


def data(
    name: str, default: Any, doc: str = "", check: Callable[[Any], str | None] | None = None
) -> Key:
    """A JSON value (lists, mappings), with its own check."""
    return Key(name, "json", default, doc, check=check)


def at_most(a: str, b: str) -> Rule:
    return Rule((a, b), lambda c: c[a] <= c[b], f"{a} <= {b}")


def infer(name: str, default: Any) -> Key:
    """The schema of a key a system did not declare: its default's type, any value of it."""
    if isinstance(default, bool):
        kind = "bool"
    elif isinstance(default, int):
        kind = "int"
    elif isinstance(default, float):
        kind = "float"
    elif isinstance(default, str):
        kind = "str"
    else:
        kind = "json"
    return Key(name, kind, default, "undeclared: the type of its default", None, None)


# ---------------------------------------------------------------------------------------- schemas
class Schema:
    """Keys and rules of one or more layers; resolves and validates a configuration."""

    def __init__(self, keys: Iterable[Key] = (), rules: Iterable[Rule] = ()):
        self.keys: dict[str, Key] = {}
        for k in keys:
            if k.name in self.keys:
                raise ValueError(f"config key {k.name!r} declared twice")
            self.keys[k.name] = k
        self.rules: list[Rule] = list(rules)

    def __add__(self, other: Schema) -> Schema:
        merged = Schema(self.keys.values(), self.rules + other.rules)
        for k in other.keys.values():
            merged.keys[k.name] = k  # a later layer may narrow an earlier one's key
        return merged

    def __contains__(self, name: object) -> bool:
        return name in self.keys

    def defaults(self) -> dict[str, Any]:
        return {k.name: k.default for k in self.keys.values()}

    def swarm(self) -> dict[str, tuple[Any, ...]]:
        """The keys an exploration draws per run, with their values."""
        return {k.name: k.swarm for k in self.keys.values() if k.swarm}

    def legacy(self, saved: dict[str, Any]) -> dict[str, Any]:
        """The values a saved configuration that lacks keys added since gets for them: each
        key's ``legacy`` value (the behaviour before it existed) where it declares one."""
        return {
            k.name: k.legacy
            for k in self.keys.values()
            if k.legacy is not None and k.name not in saved
        }

    def resolve(
        self,
        layers: Iterable[dict[str, Any]],
        unknown: Callable[[str], ConfigError],
    ) -> dict[str, Any]:
        """Defaults, then each layer of overrides in turn (command-line strings are coerced);
        every value checked, then every rule. ``unknown(key)`` makes the error for a key the
        schema does not have."""
        config = self.defaults()
        for layer in layers:
            for name, value in layer.items():
                key = self.keys.get(name)
                if key is None:
                    raise unknown(name)
                config[name] = key.coerce(value)
        for name, key in self.keys.items():
            if name in config:
                config[name] = key.validate(config[name])
        for rule in self.rules:
            rule.check(config)
        return config


def comma_list(*allowed: str) -> Callable[[Any], str | None]:
    """A check for a comma-separated list of names, each one of ``allowed`` (empty is fine)."""

    def check(value: Any) -> str | None:
        bad = [f.strip() for f in str(value).split(",") if f.strip() and f.strip() not in allowed]
        return f"a comma-separated list of {', '.join(allowed)}" if bad else None

    return check
