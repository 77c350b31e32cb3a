"""The seed database: every failure a campaign found, grouped by what failed.

SQLite (the standard library's ``sqlite3``) at ``.treadle/seeds.db``. A failure is keyed by
system, system version, property and a *signature*: the property plus the shape of the first
violated check's structured references (:func:`signature`), so the same bug found by a thousand
seeds is one row, and a different way of breaking the same property is another. Each row keeps
the seed that first showed it (with the config, bug, strategy and steps that reproduce it), the
trace saved for it, when it was first and last seen, how often, and its triage status. Every
failing seed is kept too (``failing_seeds``), and every campaign (``campaigns``), so the next
campaign starts where the last one stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from treadle.checkers.result import CheckResult
from treadle.workdir import WORKDIR, ensure_gitignore

DEFAULT_DB = os.path.join(WORKDIR, "seeds.db")

#: string references that name a *kind* of thing (an exception type, a model, the function that
#: raised), kept in the signature; other strings name *which* thing (a node, a key) and, like
#: numbers, vary from seed to seed: only their key is kept
CATEGORICAL = frozenset({"exception", "function", "file", "model", "kind", "check", "rule", "f"})
#: references that describe *where in this run* (a step, a time, a source line that moves with
#: unrelated edits, free text): left out
VOLATILE = frozenset(
    {"step", "time", "line", "code", "exception_message", "message", "index", "elapsed_s"}
)
#: a summary lists the references by name when there are at most this many
SUMMARY_NAMES = 6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY,
    system TEXT NOT NULL,
    system_version TEXT NOT NULL,
    property TEXT NOT NULL,
    signature TEXT NOT NULL,
    summary TEXT NOT NULL,
    message TEXT NOT NULL,
    bug TEXT,
    strategy TEXT NOT NULL,
    steps INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    trace TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    occurrences INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'failing',
    triaged TEXT,
    UNIQUE (system, system_version, property, signature)
);
CREATE TABLE IF NOT EXISTS failing_seeds (
    failure INTEGER NOT NULL REFERENCES failures(id),
    seed INTEGER NOT NULL,
    seen TEXT NOT NULL,
    -- the seed's own run configuration (its drawn options): seeds of one failure may differ
    config TEXT,
    PRIMARY KEY (failure, seed)
);
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY,
    system TEXT NOT NULL,
    bug TEXT,
    strategy TEXT NOT NULL,
    first_seed INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    report TEXT NOT NULL
);
"""


def _shape(value: Any, key: str | None, depth: int) -> Any:
    if isinstance(value, dict):
        if depth >= 2:
            return "{}"
        return {k: _shape(v, k, depth + 1) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return "[]"
    if isinstance(value, str) and key in CATEGORICAL:
        return value
    return "#"


def signature(violation: CheckResult) -> tuple[str, str]:
    """(signature, readable summary) of a violation: its property and the shape of its
    references (which kinds of things it names; exception types and the raising function by
    name), never the values that differ from one seed to the next."""
    shape = _shape(violation.details, None, 0)
    text = json.dumps([violation.property, shape], sort_keys=True, separators=(",", ":"))
    sig = hashlib.sha256(text.encode()).hexdigest()[:16]
    names = [k for k in shape] if isinstance(shape, dict) else []
    kinds = []
    if isinstance(shape, dict):
        for k in ("exception", "model"):
            if isinstance(shape.get(k), str):
                kinds.append(shape[k])
        frame = shape.get("frame")
        if isinstance(frame, dict) and isinstance(frame.get("function"), str):
            kinds.append(f"in {frame['function']}")
    summary = violation.property + (f" ({' '.join(kinds)})" if kinds else "")
    if names and len(names) <= SUMMARY_NAMES:
        summary += f" [{', '.join(names)}]"
    return sig, summary


def now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Failure:
    id: int
    system: str
    system_version: str
    property: str
    signature: str
    summary: str
    message: str
    bug: str | None
    strategy: str
    steps: int
    seed: int
    config: dict[str, Any]
    trace: str | None
    first_seen: str
    last_seen: str
    occurrences: int
    status: str
    triaged: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "system_version": self.system_version,
            "property": self.property,
            "signature": self.signature,
            "summary": self.summary,
            "seed": self.seed,
            "bug": self.bug,
            "strategy": self.strategy,
            "trace": self.trace,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "occurrences": self.occurrences,
            "status": self.status,
        }


class SeedDB:
    """The seed database at ``path`` (created with its folder's ``.gitignore``)."""

    def __init__(self, path: str = DEFAULT_DB):
        self.path = path
        ensure_gitignore(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            self.conn = sqlite3.connect(path, timeout=30)
            self.conn.executescript(_SCHEMA)
            columns = {r[1] for r in self.conn.execute("PRAGMA table_info(failing_seeds)")}
            if "config" not in columns:  # a database written before seeds kept their config
                self.conn.execute("ALTER TABLE failing_seeds ADD COLUMN config TEXT")
        except sqlite3.DatabaseError as e:
            from treadle.errors import InputError

            raise InputError(path, None, f"not a treadle seed database ({e})") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SeedDB:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.commit()
        self.close()

    # ---------------------------------------------------------------------------- failures
    def find(self, system: str, version: str, prop: str, sig: str) -> Failure | None:
        row = self.conn.execute(
            "SELECT * FROM failures WHERE system=? AND system_version=? AND property=? "
            "AND signature=?",
            (system, version, prop, sig),
        ).fetchone()
        return self._failure(row) if row else None

    def record(
        self,
        system: str,
        version: str,
        violation: CheckResult,
        *,
        seed: int,
        bug: str | None,
        strategy: str,
        steps: int,
        config: dict[str, Any],
        trace: str | None = None,
        when: str | None = None,
    ) -> tuple[Failure, bool]:
        """Record a failing seed; returns the failure row and whether its signature is new."""
        sig, summary = signature(violation)
        when = when or now_text()
        known = self.find(system, version, violation.property, sig)
        if known is None:
            cur = self.conn.execute(
                "INSERT INTO failures (system, system_version, property, signature, summary, "
                "message, bug, strategy, steps, seed, config, trace, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    system,
                    version,
                    violation.property,
                    sig,
                    summary,
                    violation.message,
                    bug,
                    strategy,
                    steps,
                    seed,
                    json.dumps(config, sort_keys=True),
                    trace,
                    when,
                    when,
                ),
            )
            fid = int(cur.lastrowid or 0)
            new = True
        else:
            fid = known.id
            self.conn.execute(
                "UPDATE failures SET last_seen=?, occurrences=occurrences+1, "
                "trace=COALESCE(trace, ?) WHERE id=?",
                (when, trace, fid),
            )
            new = False
        self.conn.execute(
            "INSERT OR IGNORE INTO failing_seeds (failure, seed, seen, config) VALUES (?, ?, ?, ?)",
            (fid, seed, when, json.dumps(config, sort_keys=True)),
        )
        self.conn.commit()
        row = self.conn.execute("SELECT * FROM failures WHERE id=?", (fid,)).fetchone()
        return self._failure(row), new

    def set_status(self, fid: int, status: str, when: str | None = None) -> None:
        when = when or now_text()
        if status == "fixed":
            self.conn.execute(
                "UPDATE failures SET status='fixed', triaged=? WHERE id=?", (when, fid)
            )
        else:
            self.conn.execute(
                "UPDATE failures SET status=?, triaged=?, last_seen=? WHERE id=?",
                (status, when, when, fid),
            )
        self.conn.commit()

    def failures(self, system: str | None = None) -> list[Failure]:
        if system is None:
            rows = self.conn.execute("SELECT * FROM failures ORDER BY id").fetchall()
        else:
            rows = self.conn.execute(
                "SELECT * FROM failures WHERE system=? ORDER BY id", (system,)
            ).fetchall()
        return [self._failure(r) for r in rows]

    def seed_configs(self, fid: int, limit: int) -> list[tuple[int, dict[str, Any] | None]]:
        """Up to ``limit`` failing seeds of a failure, each with its own run configuration (None:
        recorded before seeds kept one); the seed that first showed the failure comes first."""
        rows = self.conn.execute(
            "SELECT s.seed, s.config FROM failing_seeds s JOIN failures f ON f.id = s.failure "
            "WHERE s.failure=? ORDER BY s.seed != f.seed, s.seed LIMIT ?",
            (fid, limit),
        ).fetchall()
        return [(int(seed), json.loads(cfg) if cfg else None) for seed, cfg in rows]

    def seeds_of(self, fid: int) -> list[int]:
        rows = self.conn.execute(
            "SELECT seed FROM failing_seeds WHERE failure=? ORDER BY seed", (fid,)
        ).fetchall()
        return [int(r[0]) for r in rows]

    def _failure(self, row: Any) -> Failure:
        (
            fid,
            system,
            version,
            prop,
            sig,
            summary,
            message,
            bug,
            strategy,
            steps,
            seed,
            config,
            trace,
            first_seen,
            last_seen,
            occurrences,
            status,
            triaged,
        ) = row
        return Failure(
            int(fid),
            system,
            version,
            prop,
            sig,
            summary,
            message,
            bug,
            strategy,
            int(steps),
            int(seed),
            json.loads(config),
            trace,
            first_seen,
            last_seen,
            int(occurrences),
            status,
            triaged,
        )

    # ---------------------------------------------------------------------------- campaigns
    def next_seed(self, system: str, bug: str | None, strategy: str) -> int:
        """Where the next campaign of this kind starts: after the last one's seeds."""
        row = self.conn.execute(
            "SELECT MAX(first_seed + runs) FROM campaigns WHERE system=? AND bug IS ? "
            "AND strategy=?",
            (system, bug, strategy),
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def add_campaign(
        self,
        system: str,
        bug: str | None,
        strategy: str,
        first_seed: int,
        runs: int,
        started: str,
        report: dict[str, Any],
    ) -> None:
        self.conn.execute(
            "INSERT INTO campaigns (system, bug, strategy, first_seed, runs, started, finished, "
            "report) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (system, bug, strategy, first_seed, runs, started, now_text(), json.dumps(report)),
        )
        self.conn.commit()
