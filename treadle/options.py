"""System options drawn per run: the switches a system declares for exploration.

A system's config key may declare ``swarm`` values (``flag("prevote", False, ..., swarm=(False,
True))``): options the docs describe (PreVote, CheckQuorum, a quorum mode, a breaker's
thresholds) that a default exploration should not leave untested. Every run of ``treadle
explore`` (random, pct, swarm, guided, mixed) and of ``treadle campaign`` then draws each such
key from its values, as swarm testing draws fault mixes (Groce et al., ISSTA 2012), unless the
user set the key (``--config prevote=false`` pins it). The draw is a pure function of the run's
seed, made with a random generator of its own (the run's choices are not touched), and the
drawn values go into the run's configuration, so a saved trace stores them and replays exactly.
"""

from __future__ import annotations

import random
from typing import Any


def free_options(system: Any, overrides: dict[str, Any] | None) -> dict[str, tuple[Any, ...]]:
    """The swarm keys a run of ``system`` may draw: the declared ones the user did not set
    (``overrides``), each with the values that make a valid configuration with the user's
    (a value a rule across keys refuses is left out)."""
    from treadle.config import ConfigError

    pinned = dict(overrides or {})
    out: dict[str, tuple[Any, ...]] = {}
    for key, values in sorted(system.schema().swarm().items()):
        if key in pinned:
            continue
        ok = []
        for v in values:
            try:
                system.resolve_config({**pinned, key: v})
            except ConfigError:
                continue
            ok.append(v)
        if len(ok) > 1:
            out[key] = tuple(ok)
    return out


def draw(options: dict[str, tuple[Any, ...]], seed: int) -> dict[str, Any]:
    """One value per key, from the seed alone (the same in every process)."""
    if not options:
        return {}
    rng = random.Random(f"treadle-options:{seed}")
    return {k: options[k][rng.randrange(len(options[k]))] for k in sorted(options)}


def run_config(config: dict[str, Any], options: dict[str, tuple[Any, ...]], seed: int) -> dict:
    """The configuration of the run with ``seed``: ``config`` with its drawn options."""
    drawn = draw(options, seed)
    return {**config, **drawn} if drawn else config
