"""The one result type every checker returns."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
VIOLATION = "violation"
UNKNOWN = "unknown"


@dataclass
class CheckResult:
    """Outcome of a check.

    ``verdict`` is ``ok``, ``violation`` or ``unknown`` (the check could not decide, e.g. a
    timeout: never a guess). ``property`` names what was checked in the paper's words
    ("Election Safety", "linearizability"). ``message`` is one paragraph a person can read;
    ``details`` is JSON-able data for reports (the witness).
    """

    verdict: str
    property: str = ""
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @builtins.property
    def ok(self) -> bool:
        return self.verdict == OK

    @builtins.property
    def violated(self) -> bool:
        return self.verdict == VIOLATION

    @classmethod
    def passed(cls, property: str = "", message: str = "", **details: Any) -> CheckResult:
        return cls(OK, property, message, dict(details))

    @classmethod
    def violation(cls, property: str, message: str, **details: Any) -> CheckResult:
        return cls(VIOLATION, property, message, dict(details))

    @classmethod
    def unknown(cls, property: str, message: str, **details: Any) -> CheckResult:
        return cls(UNKNOWN, property, message, dict(details))

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "property": self.property,
            "message": self.message,
            "details": self.details,
        }
