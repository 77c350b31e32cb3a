"""The PBFT binding's config keys: type, range, default (see :mod:`treadle.config`)."""

from __future__ import annotations

from treadle.impl.pbft.byzantine import BYZANTINE_MODES

from treadle.config import Rule, choice, flag, integer

CONFIG_KEYS = [
    integer("f", 1, "faults tolerated; n = 3f + 1 replicas", minimum=1, maximum=4),
    integer("byzantine", 1, "Byzantine replicas (n1, n2, ...; more than f breaks the bound)"),
    choice("byzantine_mode", "mix", ("mix", *BYZANTINE_MODES), "what Byzantine replicas do"),
    integer("clients", 2, "clients"),
    integer("ops_per_client", 3, "requests per client"),
    integer("client_timeout", 40, "ticks a client waits, 0 = wait for the replies"),
    flag("think", True, "clients pause before each request"),
    integer("client_retries", 4, "client retransmissions per request"),
    integer("checkpoint_interval", 2, "a checkpoint every this many sequence numbers", 1),
    integer("watermark_window", 4, "sequence numbers between the watermarks", minimum=1),
    integer("view_change_timeout", 20, "ticks before a backup suspects the primary", 1),
    integer("status_interval", 10, "ticks between status messages", minimum=1),
    # traces saved before the key existed settled without judging the clients (legacy "off")
    # and replay unchanged
    choice(
        "client_tail",
        "on",
        ("on", "off"),
        "after the run each client gets one more operation, judged for progress",
        legacy="off",
    ),
]

CONFIG_RULES = [
    Rule(("byzantine", "f"), lambda c: c["byzantine"] <= 3 * c["f"] + 1, "byzantine <= 3f + 1"),
]
