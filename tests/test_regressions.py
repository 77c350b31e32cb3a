"""Regressions found by exploring the project's own systems."""

from __future__ import annotations

import json

from treadle.checkers.linearizability import check_history

# Found by `treadle explore example` (seed 8): c1's second write(0) is an identity step where the
# search first meets it (the register already holds 0), but it must go after write(1) so that
# c2 can read 0. Taking it greedily was unsound.
IDENTITY_WRITE_LATER = """
{"index":0,"time":1,"process":"c1","type":"invoke","f":"write","value":0}
{"index":1,"time":1,"process":"c2","type":"invoke","f":"read","value":null}
{"index":2,"time":1,"process":"c3","type":"invoke","f":"cas","value":[0,0]}
{"index":3,"time":5,"process":"c2","type":"ok","f":"read","value":null}
{"index":4,"time":5,"process":"c1","type":"ok","f":"write","value":0}
{"index":5,"time":6,"process":"c2","type":"invoke","f":"write","value":1}
{"index":6,"time":6,"process":"c1","type":"invoke","f":"write","value":0}
{"index":7,"time":8,"process":"c3","type":"ok","f":"cas","value":[0,0]}
{"index":8,"time":9,"process":"c3","type":"invoke","f":"read","value":null}
{"index":9,"time":10,"process":"c2","type":"ok","f":"write","value":1}
{"index":10,"time":11,"process":"c3","type":"ok","f":"read","value":1}
{"index":11,"time":11,"process":"c2","type":"invoke","f":"read","value":null}
{"index":12,"time":12,"process":"c3","type":"invoke","f":"read","value":null}
{"index":13,"time":12,"process":"c1","type":"ok","f":"write","value":0}
{"index":14,"time":13,"process":"c2","type":"ok","f":"read","value":0}
"""


def test_identity_write_may_linearize_later():
    events = [json.loads(line) for line in IDENTITY_WRITE_LATER.strip().splitlines()]
    assert check_history(events, "cas-register").verdict == "ok"
    # and the same history with the last read changed to 2 (never written) is not linearizable
    events[-1] = dict(events[-1], value=2)
    assert check_history(events, "cas-register").verdict == "violation"
